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
fix reads the clock once per filter (and per count of the queue's attributes), and a send no
longer counts the queue at all (it only reads one setting through the attributes).

It also counts the requests it serves by service and operation (DynamoDB single-item
operations also by the kind of item: the `pk` prefix before `#`), for the request-count
benchmarks and the cost model: `GET /_counts` answers them as JSON (`GET /_millis`: the time
spent serving them), `DELETE /_counts` resets both.
"""
import copy
import heapq
import sys
from decimal import Decimal
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


# moto's SendMessage reads one attribute of the queue (`ContentBasedDeduplication`) through
# `Queue.attributes`, which counts every message of the queue three times (visible, in
# flight, delayed): each send was O(queue), a SendMessageBatch of 10 into a queue of 60,000
# messages almost a second. While a thread sends, the counts it cannot use are not taken (a
# thread-local flag: another request's GetQueueAttributes still counts).
_sending = threading.local()


def _counting(count):
    def guarded(self):
        return 0 if getattr(_sending, "depth", 0) else count(self)
    return property(guarded)


def _not_counting(send):
    def run(self, *args, **kwargs):
        _sending.depth = getattr(_sending, "depth", 0) + 1
        try:
            return send(self, *args, **kwargs)
        finally:
            _sending.depth -= 1
    return run


models.SQSBackend.send_message = _not_counting(models.SQSBackend.send_message)
models.SQSBackend.send_message_batch = _not_counting(models.SQSBackend.send_message_batch)
models.Queue.messages = property(_visible_messages)
models.Queue.approximate_number_of_messages = _counting(lambda q: len(q.messages))
models.Queue.approximate_number_of_messages_not_visible = _counting(_not_visible_count)
models.Queue.approximate_number_of_messages_delayed = _counting(_delayed_count)

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
from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: E402
from moto.dynamodb.models.table import Table as _Table  # noqa: E402

_table_query = _Table.query


def _query(self, hash_key, *args, **kwargs):
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if index_name:
        fast = _gsi_page(self, hash_key, index_name, *args, **kwargs)
        if fast is not None:
            return fast

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


# A GSI page of an index with one hash and one range attribute (every index of ours):
# moto sorted the whole index partition by DynamoType comparisons and then walked it to the
# start key, on every page — O(partition) Python comparisons per page, hours for a 100,000-item
# partition paged by 100. Here the partition is collected once per page with native sort keys
# (C tuple comparisons, in moto's order: index range, table hash, table range), only those after
# the start key kept (the page and one item more, when no key condition or legacy filter can
# skip items), and moto's own query runs over them with the sort it would have done made the
# identity. Same items, same order, same LastEvaluatedKey.
def _gsi_page(table, hash_key, index_name, range_comparison, range_objs, limit,
              exclusive_start_key, scan_index_forward, *rest, **kwargs):
    index = {i.name: i for i in table.all_indexes()}.get(index_name)
    if index is None or not isinstance(hash_key, DynamoType):
        return None
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    if len(hashes) != 1 or len(ranges) != 1 or len(kwargs.get("range_key_conditions") or []) > 1:
        return None
    named = {"hash_key_conditions", "range_key_conditions", "projection_expressions",
             "index_name", "consistent_read", "filter_expression"}
    legacy_filters = [k for k in kwargs if k not in named]
    sort_attrs = [a for a in ranges + [table.hash_key_attr, table.range_key_attr] if a]
    hash_attr = hashes[0]

    def native(value):  # a key attribute: S, N or B
        return Decimal(value.value) if value.type == "N" else value.value

    start = None
    if exclusive_start_key is not None:
        start = tuple(native(DynamoType(exclusive_start_key[a])) for a in sort_attrs)
    forward = scan_index_forward is not False
    keyed = []
    for part in table.items.values():
        for item in (part.values() if table.range_key_attr else [part]):
            attrs = item.attrs
            value = attrs.get(hash_attr)
            if value is None or value.value != hash_key.value or value.type != hash_key.type:
                continue
            sort_value = attrs.get(sort_attrs[0])
            if sort_value is None:
                continue  # not in the index (no sort key)
            first = native(sort_value)
            if start is not None and (first < start[0] if forward else first > start[0]):
                continue  # before the start key: cheaper than the whole key
            key = (first,) + tuple([native(attrs[a]) for a in sort_attrs[1:]])
            if start is None or (key > start if forward else key < start):
                keyed.append((key, item))
    if limit and not range_comparison and not legacy_filters:
        # the page and one item more: moto's query sets LastEvaluatedKey when it meets it
        pick = heapq.nsmallest if forward else heapq.nlargest
        keyed = sorted(pick(limit + 1, keyed, key=lambda pair: pair[0]), key=lambda pair: pair[0])
    else:
        keyed.sort(key=lambda pair: pair[0])
    items = [pair[1] for pair in keyed]
    table.all_items = lambda: list(items)
    table.sorted_items = lambda _hash_attrs, _range_attrs, found: found
    try:
        return _table_query(table, hash_key, range_comparison, range_objs, limit, None,
                            scan_index_forward, *rest, **kwargs)
    finally:
        del table.all_items
        del table.sorted_items


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
