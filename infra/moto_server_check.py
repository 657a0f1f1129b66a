"""Checks that infra/moto_server.py's speed-ups answer as moto itself does (run by `make lint`).

- A GSI page (`_gsi_page`) against moto's own `Table.query`, page by page, forwards and
  backwards, with and without a sort-key condition, at several page sizes, over items that
  share sort-key values, miss a key attribute or carry negative and fractional numbers.
- A queue's message counts: a send does not count the queue (it cannot use the counts), but
  the counts read afterwards, and during another thread's send, are the real ones.
"""
import random
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import moto_server  # noqa: E402  (applies the patches)
from moto.dynamodb.models import dynamodb_backends  # noqa: E402
from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: E402
from moto.dynamodb.models.table import Table  # noqa: E402
from moto.sqs import models as sqs_models  # noqa: E402

ACCOUNT, REGION = "123456789012", "us-east-1"


def table():
    backend = dynamodb_backends[ACCOUNT][REGION]
    t = backend.create_table(
        "check",
        schema=[{"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"}],
        throughput=None,
        attr=[{"AttributeName": "pk", "AttributeType": "S"},
              {"AttributeName": "sk", "AttributeType": "S"},
              {"AttributeName": "g", "AttributeType": "S"},
              {"AttributeName": "r", "AttributeType": "N"}],
        global_indexes=[{"IndexName": "G",
                         "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                                       {"AttributeName": "r", "KeyType": "RANGE"}],
                         "Projection": {"ProjectionType": "ALL"}}],
        indexes=[], streams=None, billing_mode="PAY_PER_REQUEST", sse_specification=None,
        tags=[], deletion_protection_enabled=False, warm_throughput=None,
    )
    rng = random.Random(7)
    for i in range(600):
        item = {"pk": {"S": f"P{rng.randint(0, 50)}"}, "sk": {"S": f"S{i}"}, "v": {"N": str(i)}}
        if rng.random() < 0.9:
            item["g"] = {"S": rng.choice(["a", "b"])}
        if rng.random() < 0.9:
            item["r"] = {"N": str(rng.randint(-20, 40) / 4)}
        t.put_item(item)
    return t


def pages(t, query, forward, limit, comparison, values):
    out, start = [], None
    a = DynamoType({"S": "a"})
    while True:
        rows, _, last = query(
            t, a, comparison, values, limit, start, forward, None, "G", False, None,
            hash_key_conditions=[("g", a)],
            range_key_conditions=[("r", comparison, values)] if comparison else [])
        out.append(([(r.attrs["pk"].value, r.attrs["sk"].value) for r in rows], str(last)))
        if not last:
            return out
        start = {k: {v.type: v.value} for k, v in last.items()}


def check_gsi_pages():
    t = table()
    n = 0
    for forward in (True, False):
        for limit in (1, 3, 7, 50, None):
            for comparison, values in ((None, []), ("GT", [DynamoType({"N": "2"})]),
                                       ("BETWEEN", [DynamoType({"N": "-1"}),
                                                    DynamoType({"N": "5.5"})])):
                ours = pages(t, Table.query, forward, limit, comparison, values)
                motos = pages(t, moto_server._table_query, forward, limit, comparison, values)
                assert ours == motos, (forward, limit, comparison)
                n += 1
    print(f"GSI pages: {n} ways of paging answer as moto does")


def check_queue_counts():
    backend = sqs_models.sqs_backends[ACCOUNT][REGION]
    q = backend.create_queue("check-queue")
    for i in range(5):
        backend.send_message("check-queue", f"m{i}")
    backend.send_message("check-queue", "later", delay_seconds=60)
    assert (q.approximate_number_of_messages, q.approximate_number_of_messages_delayed,
            q.approximate_number_of_messages_not_visible) == (5, 1, 0)
    backend.receive_message("check-queue", 2, 0, 30)
    assert (q.approximate_number_of_messages,
            q.approximate_number_of_messages_not_visible) == (3, 2)
    # Another thread's counts while this one sends are the real ones.
    seen = []
    reader = threading.Event()
    done = threading.Event()

    def read():
        reader.wait()
        seen.append(q.approximate_number_of_messages)
        done.set()

    real = sqs_models.Queue.add_message

    def add_and_let_read(self, message):
        reader.set()
        done.wait(5)
        return real(self, message)

    thread = threading.Thread(target=read)
    thread.start()
    sqs_models.Queue.add_message = add_and_let_read
    try:
        backend.send_message("check-queue", "m5")
    finally:
        sqs_models.Queue.add_message = real
    thread.join()
    assert seen == [3], seen
    assert q.approximate_number_of_messages == 4
    print("queue counts: right after sends, and during another thread's send")


if __name__ == "__main__":
    check_gsi_pages()
    check_queue_counts()
