"""Pages fetched ahead of the writer: a few in memory, the rest in an unlinked file, read back
unchanged; a full spool holds the fetcher back; a sync whose writer lags stores what the emulator
serves, once."""

import json
import os
import threading
from datetime import datetime

import requests
from helpers import assert_level

from sentry_mirror.emulator import Emulator
from sentry_mirror.errors import StoreError
from sentry_mirror.fetching.client import Page, SentryClient
from sentry_mirror.fetching.rawpage import RawPage
from sentry_mirror.storage import sidefiles
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.event_walks import EventWalks
from sentry_mirror.syncing.spool import PageSpool
from sentry_mirror.syncing.syncer import Syncer, SyncOptions

TOKEN = "sntryu_" + "5" * 64


def page(text, parts=None):
    raw = RawPage(text if parts is None else "", 2, datetime(2026, 11, 1, 12), parts)
    return Page([], "0:100:0", "0:200:0", {"X-Hits": "7"}, raw)


def hold_on_a_thread(spool, text):
    """A fetcher handing on one more page: (set once it is held, {"held": …}, the thread)."""
    done, late = threading.Event(), {}

    def fetcher():
        late["held"] = spool.hold(page(text), {})
        done.set()

    thread = threading.Thread(target=fetcher)
    thread.start()
    return done, late, thread


def test_pages_beyond_the_first_few_wait_on_disk_and_come_back_unchanged(tmp_path):
    spool = PageSpool(str(tmp_path), in_memory=1)
    first, second = page('[{"id": "a"}, {"id": "é"}]'), page("", parts=('[{"id": "b"}]', '[{"id": "ü…"}]'))
    third = page('[{"id": "c"}, {"id": "d"}]')
    held = [spool.hold(p, {"n": n}) for n, p in enumerate((first, second, third))]
    assert held[0][2] is None and held[1][2] is not None and held[2][2] is not None
    assert second.raw.parts == () and third.raw.text == ""  # the text left memory
    assert spool.spooled == 2
    assert os.listdir(tmp_path) == []  # unlinked files: nothing is left behind should the process die
    back = [spool.take(h) for h in held]
    assert [p for p, _ in back] == [first, second, third] and [q for _, q in back] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert first.raw.text == '[{"id": "a"}, {"id": "é"}]'
    assert second.raw.parts == ('[{"id": "b"}]', '[{"id": "ü…"}]') and second.raw.text == ""
    assert third.raw.text == '[{"id": "c"}, {"id": "d"}]'
    assert (third.raw.count, third.raw.newest, third.headers) == (2, datetime(2026, 11, 1, 12), {"X-Hits": "7"})


def test_a_full_spool_holds_the_fetcher_back_until_the_writer_takes_a_page(tmp_path):
    spool = PageSpool(str(tmp_path), in_memory=1, on_disk_bytes=150)
    text = json.dumps([{"id": "x" * 40}, {"id": "y" * 40}])  # about 100 characters
    in_memory, on_disk = spool.hold(page(text), {}), spool.hold(page(text), {})
    done, late, thread = hold_on_a_thread(spool, text)
    assert not done.wait(0.3)  # no place in memory, and the disk's share is spent
    spool.take(in_memory)  # a place in memory frees: the fetcher goes on
    assert done.wait(5)
    thread.join()
    assert late["held"][2] is None
    assert spool.take(on_disk)[0].raw.text == text and spool.take(late["held"])[0].raw.text == text


def test_a_page_read_back_from_disk_makes_room_and_the_emptied_file_is_reused(tmp_path):
    spool = PageSpool(str(tmp_path), in_memory=1, on_disk_pages=1)
    texts = ['[{"id": "a"}]', '[{"id": "b", "v": "ß"}]', '[{"id": "c", "v": "ç…"}]']
    in_memory, on_disk = spool.hold(page(texts[0]), {}), spool.hold(page(texts[1]), {})
    done, late, thread = hold_on_a_thread(spool, texts[2])
    assert not done.wait(0.3)  # one page on disk at most
    assert spool.take(on_disk)[0].raw.text == texts[1]  # the file is emptied: the fetcher's page goes to its start
    assert done.wait(5)
    thread.join()
    assert late["held"][2] is not None and late["held"][2][0] == 0
    assert spool.take(late["held"])[0].raw.text == texts[2] and spool.take(in_memory)[0].raw.text == texts[0]
    spool.close()


def test_while_disk_is_not_wanted_pages_wait_in_memory(tmp_path):
    """Before the server has made the client wait, the writer is the bound: fetching further ahead
    would only cost the writing and reading back."""
    paced = {"yet": False}
    spool = PageSpool(str(tmp_path), in_memory=1, wanted=lambda: paced["yet"])
    first = spool.hold(page('[{"id": "a"}]'), {})
    done, late, thread = hold_on_a_thread(spool, '[{"id": "b"}]')
    assert not done.wait(0.3)  # waits for a place in memory, not for the disk
    spool.take(first)
    assert done.wait(5)
    thread.join()
    assert late["held"][2] is None and spool.spooled == 0
    paced["yet"] = True
    assert spool.hold(page('[{"id": "c"}]'), {})[2] is not None and spool.spooled == 1
    spool.close()


def test_pages_of_big_events_are_bounded_in_memory_by_their_text(tmp_path):
    """Eight pages of 100 events of 1 MB would be 800 MB in memory: the pages in memory are bounded
    by their text as well as their number, one page always allowed, whatever its size."""
    paced = {"yet": False}
    spool = PageSpool(str(tmp_path), in_memory=8, in_memory_bytes=100, wanted=lambda: paced["yet"])
    big = json.dumps([{"id": "x" * 150}])
    alone = spool.hold(page(big), {})  # bigger than the bound, but the only page in memory
    assert alone[2] is None
    done, late, thread = hold_on_a_thread(spool, '[{"id": "small"}]')
    assert not done.wait(0.3)  # eight places, but no room for its text
    assert spool.take(alone)[0].raw.text == big
    assert done.wait(5)
    thread.join()
    assert late["held"][2] is None
    second = spool.hold(page(json.dumps([{"id": "y" * 60}])), {})  # 17 + 75 characters fit in 100
    assert second[2] is None
    paced["yet"] = True  # once the server paces us, a page with no room in memory goes to disk
    third = spool.hold(page(big), {})
    assert third[2] is not None and spool.spooled == 1
    for held in (late["held"], second, third):
        spool.take(held)
    assert spool.hold(page(big), {})[2] is None  # all taken: memory is free again
    spool.close()


def test_without_a_usable_directory_pages_wait_in_memory_as_before(tmp_path, caplog):
    spool = PageSpool(str(tmp_path / "gone"), in_memory=1)
    text = '[{"id": "a"}]'
    first = spool.hold(page(text), {})
    done, late, thread = hold_on_a_thread(spool, text)
    assert not done.wait(0.3)  # the file cannot be made: it waits for a place in memory
    spool.take(first)
    assert done.wait(5)
    thread.join()
    assert late["held"][2] is None and spool.take(late["held"])[0].raw.text == text
    assert spool.spooled == 0 and "keeping them in memory" in caplog.text


def test_a_sync_whose_writer_lags_stores_every_event_once_from_the_spool(tmp_path, monkeypatch):
    """The writer is slowed so the fetchers run ahead: pages wait on disk and are stored from there,
    each event once and as the server sent it."""
    spools = []

    class Small(PageSpool):
        def __init__(self, directory, in_memory, wanted):
            super().__init__(directory, in_memory=1)  # on disk whether or not the server paces us
            spools.append(self)

    monkeypatch.setattr("sentry_mirror.syncing.event_walks.PageSpool", Small)
    slow = EventWalks._store_project_page

    def store_slowly(self, *args):
        threading.Event().wait(0.02)
        return slow(self, *args)

    monkeypatch.setattr(EventWalks, "_store_project_page", store_slowly)
    with Emulator(seed=5, scale="tiny", token=TOKEN) as emu:
        store = Store(str(tmp_path / "mirror.duckdb"))
        client = SentryClient(emu.url, emu.token, page_size=10)
        try:
            result = Syncer(store, client, emu.org_slug, options=SyncOptions(concurrency=2)).run()
        finally:
            client.close()
        assert result.status == "ok"
        assert sum(s.spooled for s in spools) >= 5
        assert_level(store, emu)
        # stored as served: each event's raw payload is the one the server lists
        project = emu.world.projects[0]
        served = requests.get(f"{emu.url}/api/0/projects/{emu.org_slug}/{project.slug}/events/",
                              params={"full": "true", "per_page": 100},
                              headers={"Authorization": f"Bearer {emu.token}"}, timeout=30).json()
        stored = dict(store.con.execute("SELECT event_id, raw FROM events WHERE project_id = ?",
                                        [str(project.id)]).fetchall())
        assert served and all(json.loads(stored[e["eventID"]]) == e for e in served)
        store.close()
    assert [n for n in os.listdir(tmp_path) if not n.startswith("mirror.duckdb")] == []
    assert sidefiles.spool_directory(str(tmp_path / "mirror.duckdb")) == str(tmp_path)


def test_a_writer_failing_while_fetchers_wait_on_a_full_spool_ends_the_sync(tmp_path, monkeypatch):
    """The writer fails on its third page while the fetchers wait for room: the pages still queued
    are let go, the fetchers stop, and the error reaches the caller instead of a hang."""
    monkeypatch.setattr("sentry_mirror.syncing.event_walks.PageSpool",
                        lambda directory, in_memory, wanted: PageSpool(directory, in_memory=1, on_disk_pages=1))
    stored = []
    keep = EventWalks._store_project_page

    def fail_on_the_third(self, *args):
        if len(stored) == 2:
            raise StoreError("the disk is full")
        threading.Event().wait(0.1)  # slow: the fetchers fill the spool meanwhile
        stored.append(args)
        return keep(self, *args)

    monkeypatch.setattr(EventWalks, "_store_project_page", fail_on_the_third)
    outcome = {}
    with Emulator(seed=5, scale="tiny", token=TOKEN) as emu:
        store = Store(str(tmp_path / "mirror.duckdb"))
        client = SentryClient(emu.url, emu.token, page_size=5)

        def run():
            try:
                outcome["result"] = Syncer(store, client, emu.org_slug, options=SyncOptions(concurrency=2)).run()
            except BaseException as exc:  # noqa: BLE001 - inspected below
                outcome["error"] = exc

        thread = threading.Thread(target=run, daemon=True)  # a hang fails the test, not the run
        thread.start()
        thread.join(60)
        assert not thread.is_alive(), "the sync hung"
        client.close()
        store.close()
    assert isinstance(outcome.get("error"), StoreError) and "disk is full" in str(outcome["error"])
