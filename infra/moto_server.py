"""moto server, with one fix to its SQS FIFO emulation.

moto 5.2.5 re-delivers the messages of a FIFO group out of order when several of them come
back from in-flight at once (it un-pends them one by one while scanning, so the group still
looks in flight when it meets the first one, and the second one is delivered first). Real SQS
delivers a group strictly in order; the local runner and the tests rely on that. The fix
un-pends every message whose visibility timeout has expired before the scan.
"""
import sys

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

if __name__ == "__main__":
    sys.exit(main())
