from papyra import codec
from papyra.records import EventRecord


def test_v1_line_round_trips_with_seq_and_checksum() -> None:
    rec = EventRecord(system_id="orders", actor_address="orders:3", event_type="ActorCrashed",
                      payload={"error": "ValueError: boom"})
    line = codec.encode(rec, 17)
    assert line.endswith(b'"}\n')
    back = codec.decode(line[:-1])
    assert back == rec
    assert back.seq == 17


def test_legacy_line_reads_as_legacy_record() -> None:
    line = (b'{"kind": "event", "system_id": "demo", "actor_address": "demo:1", '
            b'"event_type": "ActorStarted", "payload": {}, "timestamp": 244.8}')
    rec = codec.decode(line)
    assert rec.legacy
    assert rec.seq is None
