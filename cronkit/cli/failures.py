"""The handlers of the commands about failing jobs: their alerts (``cronkit alerts``) and the calls
that ran out of retries (``cronkit dead-letter``). Shared helpers live in :mod:`cronkit.cli.commands`."""

from __future__ import annotations

import argparse

from cronkit.cli.commands import _connect, _emit_json, _manifest
from cronkit.errors import UsageError


# -- dead letters ---------------------------------------------------------------------------------


def cmd_dead_letter_list(args: argparse.Namespace) -> int:
    from cronkit import db, retries

    with _connect(args) as conn, db.read_only(conn):
        letters = retries.list_dead_letters(conn, project=args.project, limit=args.limit,
                                            state=None if args.all else retries.DeadLetterState.OPEN)
    if args.json:
        _emit_json([letter.as_dict() for letter in letters])
        return 0
    if not letters:
        print("no dead letters" if args.all else "no open dead letters")
    for letter in letters:
        print(letter.line())
        for attempt in letter.evidence:
            answer = attempt.get("status_code") or attempt.get("outcome")
            print(f"    attempt {attempt['attempt']}: request {attempt['request_id']} sent {attempt['sent_at']}, "
                  f"answer {answer}{' — ' + attempt['error_msg'] if attempt.get('error_msg') else ''}")
        if letter.excerpt:
            print(f"    last response: {letter.excerpt[:200]}")
    return 0


def _dead_letter_change(args: argparse.Namespace, action: str) -> int:
    from cronkit import db, retries
    from cronkit.errors import NotConfirmed

    with _connect(args) as conn:
        if not args.yes:
            with db.read_only(conn):
                letter = retries.find_dead_letter(conn, args.id)
            would = (retries.replay_preview(letter) if action == "replay"
                     else f"would mark dead letter #{letter.id} of job {letter.jobname!r} dropped (its evidence stays)")
            if args.json:
                _emit_json({"dead_letter": letter.as_dict(), "replayed" if action == "replay" else "dropped": False,
                            "would": would})
            else:
                print(letter.line())
                print(would)
            raise NotConfirmed(f"Dead letter #{args.id} was not {'replayed' if action == 'replay' else 'dropped'}.",
                               remedy=f"Re-run with --yes to {action} it.")
        letter = retries.replay(conn, args.id) if action == "replay" else retries.drop(conn, args.id)
    if args.json:
        _emit_json({"dead_letter": letter.as_dict(), "replayed" if action == "replay" else "dropped": True})
    else:
        print(letter.line())
    return 0


def cmd_dead_letter_replay(args: argparse.Namespace) -> int:
    return _dead_letter_change(args, "replay")


def cmd_dead_letter_drop(args: argparse.Namespace) -> int:
    return _dead_letter_change(args, "drop")


# -- alerts ---------------------------------------------------------------------------------------


def cmd_alerts_status(args: argparse.Namespace) -> int:
    from cronkit import alerts

    manifest = _manifest(args)
    with _connect(args, autocommit=True) as conn:
        found = alerts.status(conn, manifest.project, deliveries=args.last)
    if args.json:
        _emit_json(found)
        return 1 if found["open"] else 0
    if not found["applied"]:
        print("no alert state yet: add [alerts] to the manifest and run `cronkit apply`")
        return 0
    print(f"open alerts of {manifest.project}: {len(found['open']) or 'none'}")
    for a in found["open"]:
        told = "alerted" if a["notified"] else "not sent (silenced or awaiting evaluation)"
        print(f"  DOWN {a['subject']} (rule {a['rule']}) since {a['since']:%Y-%m-%d %H:%M:%S%z}: {a['detail']} [{told}]")
    for s in found["silences"]:
        print(f"silenced: {s['subject']} until {s['ends_at']:%Y-%m-%d %H:%M:%S%z} {s['reason']}")
    if found["deliveries"]:
        print("last deliveries:")
    for d in found["deliveries"]:
        status = alerts.DeliveryStatus(d["status"]).words
        code = f" {d['status_code']}" if d["status_code"] else ""
        print(f"  #{d['id']} {d['created_at']:%Y-%m-%d %H:%M:%S} {d['channel']} ({d['channel_kind']}) {d['event']} "
              f"{d['subject'] or ''}: {status}{code}{' — ' + d['note'] if d['note'] else ''}")
    return 1 if found["open"] else 0


def cmd_alerts_test(args: argparse.Namespace) -> int:
    from cronkit import alerts
    from cronkit.errors import NotConfirmed

    manifest = _manifest(args)
    statement = alerts.test_statement(manifest, args.channel)  # an unknown channel fails before connecting
    if not args.yes:
        with _connect(args) as conn:
            shown = statement.as_string(conn)
        if args.json:
            _emit_json({"channel": args.channel, "sent": False, "statement": shown})
        else:
            print(f"would send a test message to channel {args.channel!r} with (URL read from the secret backend):")
            print(shown)
        raise NotConfirmed(f"No test message was sent to {args.channel!r}.", remedy="Re-run with --yes to send it.")
    with _connect(args) as conn:
        delivery = alerts.send_test(conn, manifest, args.channel)
    if args.json:
        _emit_json({"channel": args.channel, "sent": delivery.get("status") == alerts.DeliveryStatus.SENT,
                    "delivery": delivery})
    else:
        status = alerts.DeliveryStatus(delivery["status"]).words if delivery.get("status") else "not recorded"
        print(f"test message to {args.channel!r}: {status}{' — ' + delivery['note'] if delivery.get('note') else ''}"
              " (see `cronkit alerts status` for the answer)")
    return 0 if delivery.get("status") == alerts.DeliveryStatus.SENT else 1


def cmd_alerts_silence(args: argparse.Namespace) -> int:
    from cronkit import alerts
    from cronkit.errors import NotConfirmed
    from cronkit.maintenance import parse_interval

    manifest = _manifest(args)
    try:
        duration = parse_interval(args.duration)
    except ValueError as exc:
        raise UsageError(f"--for: {exc}", remedy='e.g. --for "2 hours"') from None
    what = f"job {args.job!r}" if args.job else f"every alert of project {manifest.project!r}"
    if not args.yes:
        if args.json:
            _emit_json({"silenced": False, "subject": args.job, "for": args.duration})
        else:
            print(f"would silence {what} for {args.duration}")
        raise NotConfirmed(f"{what} was not silenced.", remedy="Re-run with --yes to silence it.")
    with _connect(args) as conn:
        row = alerts.silence(conn, manifest.project, args.job, duration, args.reason)
    if args.json:
        _emit_json({"silenced": True, "subject": args.job, "id": row["id"], "ends_at": row["ends_at"]})
    else:
        print(f"silenced {what} until {row['ends_at']:%Y-%m-%d %H:%M:%S%z} (silence #{row['id']})")
    return 0
