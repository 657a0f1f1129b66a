"""moto server, with two fixes: SQS FIFO order, and atomic DynamoDB writes.

moto 5.2.5 re-delivers the messages of a FIFO group out of order when several of them come
back from in-flight at once (it un-pends them one by one while scanning, so the group still
looks in flight when it meets the first one, and the second one is delivered first). Real SQS
delivers a group strictly in order; the local runner and the tests rely on that. The fix
un-pends every message whose visibility timeout has expired before the scan.

moto's threaded server runs DynamoDB writes concurrently without a lock, so two conditional
writes racing on one item (two `attribute_not_exists` puts of a uniqueness claim in
TransactWriteItems) can both succeed, which DynamoDB never allows. The fix serialises moto's
DynamoDB writes: each condition check and its write are atomic, as in DynamoDB. Reads take
the same lock for the whole request: moto's UpdateItem of a new item first stores the bare
key, then sets the attributes in place, so a GetItem at that moment read an item with only
its key (a customer profile without `customer_id`; seen as a parked record on CI), and a
query serialised after the lock could see an update half applied. DynamoDB never shows
either.

moto's TransactWriteItems deep-copies every table it touches before writing (to roll back on
a failure), so one transaction costs time in proportion to the table: a campaign fan-out of
a few thousand recipients spent seconds per transaction and starved every other request of
the GIL. The fix checks every condition first, writes only when all hold, and undoes a failed
write from copies of the items it touched (the same outcome, under the write lock above).

moto's SQS filters the visible messages of a queue on every send, reading the clock twice per
message held: a queue of a few thousand messages took half a second per SendMessageBatch. The
fix reads the clock once per filter (and per count of the queue's attributes).

It also counts the requests it serves by service and operation (DynamoDB single-item
operations also by the kind of item: the `pk` prefix before `#`), for the request-count
benchmarks and the cost model: `GET /_counts` answers them as JSON (`GET /_millis`: the time
spent serving them), `DELETE /_counts` resets both.
"""
import copy
import sys
import threading

from moto.server import main
from moto.sqs import models

_receive = models.SQSBackend.receive_message


def _receive_in_group_order(self, queue_name, *args, **kwargs):
    queue = self.get_queue(queue_name)
    for message in list(queue.pending_messages):
        if message.visible:
            queue.pending_messages.discard(message)
    return _receive(self, queue_name, *args, **kwargs)


models.SQSBackend.receive_message = _receive_in_group_order


def _visible_messages(self):
    # moto's own property reads the clock twice per message (O(queue) clock reads on every
    # send); the same filter with one clock read.
    now = models.unix_time_millis()
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


def _not_visible_count(self):
    now = models.unix_time_millis()
    return sum(1 for m in self._messages if not now > m.visible_at)


def _delayed_count(self):
    now = models.unix_time_millis()
    return sum(1 for m in self._messages if now < m.delayed_until)


models.Queue.messages = property(_visible_messages)
models.Queue.approximate_number_of_messages_not_visible = property(_not_visible_count)
models.Queue.approximate_number_of_messages_delayed = property(_delayed_count)

from moto.dynamodb import models as dynamodb_models  # noqa: E402

_dynamodb_writes = threading.RLock()


def _atomic(method):
    def run(self, *args, **kwargs):
        with _dynamodb_writes:
            return method(self, *args, **kwargs)

    run.__name__ = method.__name__
    return run


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
    setattr(
        dynamodb_models.DynamoDBBackend,
        _name,
        _atomic(getattr(dynamodb_models.DynamoDBBackend, _name)),
    )

from moto.dynamodb.responses import DynamoHandler  # noqa: E402

_dynamodb_call_action = DynamoHandler.call_action


def _whole_request_atomic(self):
    # The request is parsed, run and its answer serialised under the lock: every read sees
    # each write whole.
    with _dynamodb_writes:
        return _dynamodb_call_action(self)


DynamoHandler.call_action = _whole_request_atomic

from moto.dynamodb import exceptions as dynamodb_exceptions  # noqa: E402
from moto.dynamodb.comparisons import get_filter_expression  # noqa: E402


def _transact_write_items(self, transact_items):
    ex = dynamodb_exceptions
    if len(transact_items) > 100:
        raise ex.TooManyTransactionsException()
    targets = set()
    errors = []
    planned = []
    # 1. Every condition, against the state before the transaction.
    for item in transact_items:
        if len(list(item.keys())) > 1:
            raise ex.TransactWriteSingleOpException
        original_item = None
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            table = self.get_table(table_name)
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            unique = (str(table_name), str(dict(sorted(key.items()))))
            if unique in targets:
                raise ex.MultipleTransactionsException()
            targets.add(unique)
            current = self.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition,
                    op.get("ExpressionAttributeNames"),
                    op.get("ExpressionAttributeValues"),
                )
                if not check.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ex.ConditionalCheckFailed(item=original_item)
            before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
            planned.append((op_type, op, table_name, key, before))
            errors.append((None, None, None))
        except (ex.MultipleTransactionsException, ex.MockValidationException):
            raise
        except ex.ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 moto reports any failure per item
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        raise ex.TransactionCanceledException(errors)
    # 2. The writes; one that fails undoes the ones before it.
    done = []
    try:
        for op_type, op, table_name, key, before in planned:
            args = dict(
                condition_expression=op.get("ConditionExpression"),
                expression_attribute_names=op.get("ExpressionAttributeNames"),
                expression_attribute_values=op.get("ExpressionAttributeValues"),
            )
            if op_type == "Put":
                self.put_item(table_name, op["Item"], **args)
            elif op_type == "Delete":
                self.delete_item(table_name, key, **args)
            elif op_type == "Update":
                self.update_item(
                    table_name, key, update_expression=op["UpdateExpression"], **args
                )
            done.append((table_name, key, before))
    except Exception as e:
        for table_name, key, before in reversed(done):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before)
        if isinstance(e, ex.MockValidationException):
            raise
        failed = [(None, None, None)] * len(planned)
        failed[len(done)] = (type(e).__name__, str(e), None)
        raise ex.TransactionCanceledException(failed)


dynamodb_models.DynamoDBBackend.transact_write_items = _atomic(_transact_write_items)

# Query without reading the whole table. moto's Table.query starts from Table.all_items(),
# every item of the table sorted by key, and then keeps one partition (a base-table query) or
# the items of one index key, which it sorts again (a GSI query): each query cost O(n log n) of
# the table, so a 100,000-recipient campaign took most of an hour in moto alone. A base-table
# query now starts from its partition (the same items, in the same order after query's own
# sort); a GSI query from the items unsorted (query sorts what it keeps). Results are
# unchanged; every DynamoDB request runs under the lock above, so the swap is not seen by
# another request.
from moto.dynamodb.models.table import Table as _Table  # noqa: E402

_table_query = _Table.query


def _query(self, hash_key, *args, **kwargs):
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if index_name:
        def items():
            for part in self.items.values():
                if self.range_key_attr:
                    yield from part.values()
                else:
                    yield part
        self.all_items = lambda: list(items())
    else:
        def partition():
            part = self.items.get(hash_key)
            if part is None:
                return []
            return list(part.values()) if self.range_key_attr else [part]
        self.all_items = partition
    try:
        return _table_query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


_Table.query = _query

import collections  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

from moto.moto_server import werkzeug_app  # noqa: E402

_counts = collections.Counter()
_millis = collections.Counter()
_counts_lock = threading.Lock()
_SINGLE_ITEM = ("GetItem", "PutItem", "UpdateItem", "DeleteItem")


def _label(environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    service = m.group(1) if m else "unsigned"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        op = target.rsplit(".", 1)[-1]
    else:
        segment = environ.get("PATH_INFO", "/").strip("/").split("/", 1)[0]
        op = f'{environ.get("REQUEST_METHOD", "?")} /{segment}'
    if service == "dynamodb" and op in ("TransactWriteItems", "BatchWriteItem", "TransactGetItems", "BatchGetItem"):
        # How many items: what DynamoDB bills (a transaction twice per item).
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            doc = json.loads(body or b"{}")
            if op.startswith("Transact"):
                n = len(doc.get("TransactItems") or [])
            elif op == "BatchWriteItem":
                n = sum(len(v) for v in (doc.get("RequestItems") or {}).values())
            else:
                n = sum(len(v.get("Keys") or []) for v in (doc.get("RequestItems") or {}).values())
            op = f"{op}[{n}]"
        except (ValueError, KeyError, AttributeError, TypeError):
            pass
    elif service == "dynamodb" and op in _SINGLE_ITEM:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            doc = json.loads(body or b"{}")
            pk = (doc.get("Key") or doc.get("Item") or {}).get("pk", {}).get("S", "")
            kind = pk.split("#", 1)[0] if "#" in pk else pk
            if kind:
                op = f"{op}[{kind}]"
        except (ValueError, KeyError, AttributeError):
            pass
    return f"{service}.{op}"


_dispatch = werkzeug_app.DomainDispatcherApplication.__call__


def _counted(self, environ, start_response):
    path = environ.get("PATH_INFO")
    if path in ("/_counts", "/_millis"):
        with _counts_lock:
            if environ.get("REQUEST_METHOD") == "DELETE":
                _counts.clear()
                _millis.clear()
            which = _counts if path == "/_counts" else _millis
            body = json.dumps({k: round(v) for k, v in which.items()}, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    label = _label(environ)
    started = time.monotonic()
    try:
        return _dispatch(self, environ, start_response)
    finally:
        with _counts_lock:
            _counts[label] += 1
            _millis[label] += (time.monotonic() - started) * 1000


werkzeug_app.DomainDispatcherApplication.__call__ = _counted

if __name__ == "__main__":
    sys.exit(main())
