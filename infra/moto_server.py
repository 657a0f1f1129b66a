"""moto server, with two fixes: SQS FIFO order, and atomic DynamoDB writes.

moto 5.2.5 re-delivers the messages of a FIFO group out of order when several of them come
back from in-flight at once (it un-pends them one by one while scanning, so the group still
looks in flight when it meets the first one, and the second one is delivered first). Real SQS
delivers a group strictly in order; the local runner and the tests rely on that. The fix
un-pends every message whose visibility timeout has expired before the scan.

moto's threaded server runs DynamoDB writes concurrently without a lock, so two conditional
writes racing on one item (two `attribute_not_exists` puts of a uniqueness claim in
TransactWriteItems) can both succeed, which DynamoDB never allows. The fix serialises moto's
DynamoDB writes: each condition check and its write are atomic, as in DynamoDB.
"""
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

if __name__ == "__main__":
    sys.exit(main())
