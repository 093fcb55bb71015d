"""The demo's monitoring step: a drift monitor on the deployment, a webhook receiver for its
alerts, and a batch of applicants from a new channel whose incomes (and credit scores) have
shifted. The monitor fires, the signed alert reaches the receiver, and the HTML drift report
is written."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console

__all__ = ["DriftOutcome", "watch_for_drift"]

MONITOR = "credit-drift"
EVERY = timedelta(minutes=10)
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class DriftOutcome:
    """What the step produced: the alert's id (None when none opened), the event types the
    receiver accepted, the HTML report's path and the new channel's applicants that were
    served (with the outcome the generator drew for each, known only later in the story)."""

    alert_id: int | None
    received: tuple[str, ...]
    report: Path
    batch: pl.DataFrame


def watch_for_drift(root: Path, model: str, out: Console, *, rows: int = 600) -> DriftOutcome:
    """Run the step on the demo project at ``root`` serving deployment ``model``."""
    import polars as pl

    from shipyard.demo.data import credit_applicants
    from shipyard.demo.receiver import Receiver
    from shipyard.demo.traffic import send_batch
    from shipyard.project import open_project

    # Webhooks refuse private addresses unless the project allows them: the receiver listens
    # on 127.0.0.1, so the demo project allows that one address (and says so).
    with (root / "shipyard.toml").open("a", encoding="utf-8") as f:
        f.write('\n[webhooks]\nallow = ["127.0.0.1"]  # the demo\'s local receiver\n')
    out.print('shipyard.toml: \\[webhooks] allow = ["127.0.0.1"]  (the receiver is local)')
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    secret_dir = root / ".shipyard" / "webhook-secrets"
    secret_dir.mkdir(parents=True, exist_ok=True)
    secret_file = secret_dir / "demo-receiver"
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")

    receiver = Receiver(secret)
    project = open_project(root)
    try:
        quiet = project.drift.compare(f"{model}@production", window_seconds=3600)
        out.print(
            f"$ shipyard monitor drift {model}@production --window 1h\n"
            f"  {quiet.current_rows} requests of the last hour against {quiet.reference}: "
            f"{quiet.verdict} (weighted share {quiet.share:.2f} "
            f"{'>=' if quiet.drifted else '<'} {quiet.share_threshold:g}; a small window is "
            "judged against its own sampling noise)"
        )
        hook = project.webhooks.add(
            receiver.url, ["alert.opened", "alert.resolved"], secret_file=str(secret_file)
        )
        out.print(
            f"$ shipyard webhooks add {receiver.url} --events alert.opened,alert.resolved "
            f"--secret-file .shipyard/webhook-secrets/{secret_file.name}\n"
            f"  -> webhook {hook.id}; a receiver on 127.0.0.1 checks each signature"
        )
        monitor = project.monitors.add(
            MONITOR,
            deployment=model,
            kind="drift",
            window_seconds=int(WINDOW.total_seconds()),
            every_seconds=int(EVERY.total_seconds()),
            notify=[hook.id],
        )
        out.print(
            f"$ shipyard monitor add {MONITOR} --deployment {model} --kind drift --window 1h "
            f"--every 10m --notify {hook.id}\n"
            f"  -> alerts when {monitor.thresholds[0].describe()} is broken (drift_share: "
            "the drifted columns' share of the model's permutation importance)"
        )

        # New applicants get ids after the last one the origination system registered.
        known = project.datasets.get("credit").to_polars()
        first_id = int(known.select(pl.col("applicant_id").max()).item()) + 1
        today = datetime.now(UTC).date()
        batch = credit_applicants(rows, seed=11, start_id=first_id, start_date=today, days=1)
        shifted = credit_applicants(
            rows, seed=11, start_id=first_id, start_date=today, days=1, income_shift=-0.5
        )
        taken = send_batch(project, model, shifted)
        before, after = (
            frame.select(pl.col("income", "credit_score").median()).row(0)
            for frame in (batch, shifted)
        )
        out.print(
            f"a new channel sends {rows} applicants: median income "
            f"{before[0]:,.0f} -> {after[0]:,.0f}, median credit score {before[1]:.0f} -> "
            f"{after[1]:.0f}; answered by "
            + ", ".join(f"{who} {n}" for who, n in sorted(taken.items()))
        )

        # Cron would run the pass when the current 10-minute window closes; the demo runs it
        # for that window now instead of waiting.
        now = datetime.now(UTC)
        close = datetime.fromtimestamp(
            (int(now.timestamp()) // int(EVERY.total_seconds()) + 1) * EVERY.total_seconds(), UTC
        )
        outcome = project.monitors.run(MONITOR, now=close)
        result = outcome.result
        out.print(
            f"$ shipyard monitor run {MONITOR}   (for the window closing at "
            f"{close:%H:%M} UTC)\n  {result.status}: {result.message}"
        )
        alert = outcome.alert
        if alert is not None:
            out.print(f"  -> alert {alert.id} {outcome.alert_event}: {alert.summary}")
        project.webhooks.deliver()
        message = receiver.wait_for("alert.opened", timeout=15)
        if message is not None:
            data = message.body.get("data", {})
            out.print(
                f"receiver on 127.0.0.1: signature verified; alert.opened for monitor "
                f"{data.get('monitor', MONITOR)!r}, alert {data.get('alert_id')}"
            )
        else:
            out.print("receiver: no alert arrived")

        report = project.drift.compare(f"{model}@production", window_seconds=3600)
        (root / "reports").mkdir(exist_ok=True)
        path = project.drift.save_html(report, root / "reports" / "drift-credit-risk.html")
        out.print(
            f"$ shipyard monitor drift {model}@production --window 1h --html "
            f"reports/{path.name}\n  {report.verdict}: "
            f"{', '.join(report.drifted_columns)}\n  report: {path}"
        )
        return DriftOutcome(
            alert_id=alert.id if alert is not None else None,
            received=tuple(m.type for m in receiver.messages),
            report=path,
            batch=shifted,
        )
    finally:
        receiver.close()
        project.close()
