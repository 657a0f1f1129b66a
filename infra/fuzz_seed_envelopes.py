"""Seeds the envelope fuzz corpus: one queue envelope per item of every Meta fixture."""
import json
import pathlib
import sys

KINDS = {
    "message_template_status_update": "template_status",
    "message_template_quality_update": "template_quality",
    "message_template_components_update": "template_components",
    "template_category_update": "template_category",
    "account_update": "account_update",
}

src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
n = 0
for f in sorted(src.glob("*.json")):
    try:
        body = json.loads(f.read_text())
    except ValueError:
        continue
    for entry in body.get("entry", []) if isinstance(body, dict) else []:
        for change in entry.get("changes", []):
            value, field = change.get("value", {}), change.get("field")
            if not isinstance(value, dict):
                continue
            pnid = (value.get("metadata") or {}).get("phone_number_id")
            items = []
            for key, kind in (("messages", "message"), ("statuses", "status"),
                              ("message_echoes", "echo"), ("user_preferences", "user_preference"),
                              ("calls", "call")):
                items += [(kind, i) for i in value.get(key, []) or []]
            if field == "calls":
                items = [("call", i) for i in value.get("calls", [])]
                items += [("call_status", i) for i in value.get("statuses", [])]
            if field in KINDS:
                items = [(KINDS[field], value)]
            for kind, item in items:
                env = {"v": 1, "kind": kind, "waba_id": str(entry.get("id", "1")),
                       "received_at_ms": 1700000000000, "item": item}
                if pnid:
                    env["phone_number_id"] = pnid
                if entry.get("time"):
                    env["entry_time_ms"] = int(entry["time"]) * 1000 + 999
                (out / f"{f.stem}-{n}.json").write_text(json.dumps(env))
                n += 1
print(f"seeded {n} envelopes")
