"""The dashboard in headless Chromium, as an operator uses it: start a backup with the button,
watch its progress appear, see the job complete. Driven by crates/cli/tests/dashboard.rs.

Environment: DASHBOARD_URL, CASSETTE_TOKEN, BACKUP_NAME, KEYSPACE, SCREENSHOTS (a directory),
CHROMIUM (the browser binary). Exits non-zero with the reason when a step fails.

With MODE=point-in-time, it checks that every node's row shows its recoverable window from
the backup BACKUP_NAME (NODES rows, default 3).

With MODE=agent-down (and DOWN_AGENT, DOWN_HOST_ID: the agent stopped and the node it served),
it checks instead that the page still shows every node, marks that one unreachable, and lists
the backups the other agents have.
"""
import os
import re
import sys

from playwright.sync_api import expect, sync_playwright

url = os.environ["DASHBOARD_URL"]
name = os.environ["BACKUP_NAME"]
shots = os.environ["SCREENSHOTS"]
os.makedirs(shots, exist_ok=True)

def agent_down(page):
    """One agent is down: every node is listed, that one marked, the backups still shown."""
    page.goto(url)
    expect(page.locator("#nodes tbody tr")).to_have_count(3, timeout=15_000)
    down = page.locator("#nodes tr.unreachable")
    expect(down).to_have_count(1)
    expect(down).to_contain_text(os.environ["DOWN_HOST_ID"])
    expect(down).to_contain_text("agent unreachable")
    expect(down).to_contain_text(os.environ["DOWN_AGENT"])
    expect(page.locator("#nodes tr.node:not(.unreachable)")).to_have_count(2)
    expect(page.locator(f'#backups tr.backup[data-name="{name}"]')).to_contain_text("complete", timeout=15_000)
    expect(page.locator("#backup-errors")).to_contain_text(os.environ["DOWN_AGENT"])
    page.screenshot(path=f"{shots}/4-agent-down.png", full_page=True)


def point_in_time(page):
    """Every node's row shows its recoverable window, from the backup BACKUP_NAME."""
    page.goto(url)
    expect(page.locator("#nodes tbody tr")).to_have_count(int(os.environ.get("NODES", "3")), timeout=15_000)
    cells = page.locator("#nodes tr.node td.pitr")
    for i in range(cells.count()):
        expect(cells.nth(i)).to_contain_text("→", timeout=15_000)
        expect(cells.nth(i)).to_contain_text(f"from backup {name}")
    page.screenshot(path=f"{shots}/5-point-in-time.png", full_page=True)


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=os.environ["CHROMIUM"], args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    if os.environ.get("MODE") == "point-in-time":
        point_in_time(page)
        browser.close()
        print("dashboard: every node's recoverable window is shown")
        sys.exit(0)
    if os.environ.get("MODE") == "agent-down":
        agent_down(page)
        browser.close()
        print("dashboard: with one agent down, every node and the others' backups are shown")
        sys.exit(0)
    page.goto(url)
    expect(page.locator("#nodes tbody tr")).to_have_count(3, timeout=15_000)
    page.screenshot(path=f"{shots}/1-dashboard.png", full_page=True)

    page.fill("#token", os.environ["CASSETTE_TOKEN"])
    page.dispatch_event("#token", "change")
    page.fill("#backup-name", name)
    page.fill("#keyspaces", os.environ["KEYSPACE"])
    page.click("#start-backup")
    expect(page.locator("#notice")).to_contain_text("started", timeout=10_000)

    # Progress appears: the running job, then a node's progress row.
    expect(page.locator("#running-job")).to_be_visible(timeout=20_000)
    expect(page.locator("#running .node-progress").first).to_be_visible(timeout=30_000)
    expect(page.locator("#running")).to_contain_text(re.compile(r"[1-9][0-9]*/[0-9]+ files"), timeout=60_000)
    page.screenshot(path=f"{shots}/2-progress.png", full_page=True)

    # The job completes: its history row says succeeded, the backup is listed complete.
    row = page.locator("#history tr.job", has_text=name).first
    expect(row).to_have_attribute("data-state", "succeeded", timeout=300_000)
    expect(page.locator("#running")).to_contain_text("No job is running", timeout=10_000)
    expect(page.locator(f'#backups tr.backup[data-name="{name}"]')).to_contain_text("complete", timeout=15_000)
    page.screenshot(path=f"{shots}/3-done.png", full_page=True)

    # A restore asks for confirmation naming what will be truncated; dismissing it starts nothing.
    messages = []
    page.once("dialog", lambda d: (messages.append(d.message), d.dismiss()))
    page.click(f'#backups tr.backup[data-name="{name}"] [data-restore]')
    page.wait_for_timeout(500)
    if not messages or "TRUNCATED" not in messages[0] or os.environ["KEYSPACE"] not in messages[0]:
        print(f"restore confirmation did not name the keyspace: {messages}", file=sys.stderr)
        sys.exit(1)
    browser.close()
print("dashboard: backup started from the page, progress seen, job succeeded")
