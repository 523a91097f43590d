"""The client over real HTTP against a scripted server, for header cases the emulator cannot stage
exactly: rate-limit waits on the server's clock, Retry-After, and a Link pointing at another host."""

import email.utils
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from sentry_mirror.errors import ApiError, AuthError
from sentry_mirror.fetching.client import SentryClient, _Window

TOKEN = "sntryu_" + "d" * 64
SERVER_NOW = 1_900_000_000  # the server's clock, far from the test machine's: only headers matter


class Script:
    """Answers requests from a list of (status, headers, body); records what was asked."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0


@pytest.fixture
def server():
    holder = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            script = holder["script"]
            with script.lock:
                script.requests.append({"path": self.path, "host": self.headers.get("Host"),
                                        "authorization": self.headers.get("Authorization")})
                status, headers, body, *delay = script.answers.pop(0) if script.answers else (200, {}, [])
                script.in_flight += 1
                script.most_in_flight = max(script.most_in_flight, script.in_flight)
            time.sleep(delay[0] if delay else 0)  # a slow answer: the request stays in flight meanwhile
            with script.lock:
                script.in_flight -= 1
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)  # sends Date from date_time_string below
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def date_time_string(self, timestamp=None):
            return email.utils.formatdate(SERVER_NOW, usegmt=True)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def run(answers):
        holder["script"] = Script(answers)
        return f"http://127.0.0.1:{httpd.server_address[1]}", holder["script"]

    yield run
    httpd.shutdown()


def client_for(url, sleeps):
    return SentryClient(url, TOKEN, sleep=sleeps.append, backoff_base=0.01)


def test_429_without_retry_after_waits_until_reset_on_the_servers_clock(server):
    url, script = server([
        (429, {"X-Sentry-Rate-Limit-Remaining": "0", "X-Sentry-Rate-Limit-Reset": str(SERVER_NOW + 3)},
         "You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds"),
        (200, {}, [{"id": "1"}]),
    ])
    sleeps = []
    data, _ = client_for(url, sleeps).get("organizations/")
    assert data == [{"id": "1"}]
    # 3 s by the server's clock (Reset - Date), whatever this machine's clock says
    assert any(2.9 <= s <= 3.2 for s in sleeps), sleeps


def test_retry_after_wins(server):
    url, script = server([(429, {"Retry-After": "7"}, "slow down"), (200, {}, [])])
    sleeps = []
    client_for(url, sleeps).get("organizations/")
    assert sleeps == [7.0]


STORM = (429, {}, "You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds")


@pytest.mark.parametrize("refusal", [STORM, (503, {}, b"<html>503 Service Unavailable</html>")])
def test_a_long_storm_of_429s_and_503s_is_waited_out_by_time_not_by_count(server, refusal):
    """429s without Retry-After (and 503s) many more times than max_retries: on a loaded machine
    the count ran out and the stream failed. They are retried until the time budget is spent."""
    url, script = server([refusal] * 20 + [(200, {}, [{"id": "1"}])])
    sleeps = []
    client = SentryClient(url, TOKEN, sleep=sleeps.append, backoff_base=0.01, backoff_cap=0.05, max_retries=2)
    data, _ = client.get("organizations/")
    assert data == [{"id": "1"}] and len(script.requests) == 21
    assert len(sleeps) == 20 and all(0.005 / 2 <= s <= 0.05 for s in sleeps), sleeps  # exponential, capped


def test_a_429_storm_longer_than_the_time_budget_fails_naming_the_rate_limit(server):
    url, script = server([STORM] * 200)
    sleeps = []
    client = SentryClient(url, TOKEN, sleep=sleeps.append, backoff_base=0.01, backoff_cap=0.05, max_retries=2,
                          retry_budget=0.5)
    with pytest.raises(ApiError) as info:
        client.get("organizations/")
    assert info.value.status == 429
    assert "rate limit" in str(info.value) and "0.5" in str(info.value) and "too frequently" in str(info.value)
    assert sum(sleeps) <= 0.5 and len(sleeps) > 9  # by time: well past max_retries
    assert len(script.requests) == len(sleeps) + 1


def test_a_stop_ends_a_budgeted_wait_at_once(server):
    from sentry_mirror.errors import Interrupted

    url, script = server([STORM] * 5)
    sleeps = []
    client = SentryClient(url, TOKEN, sleep=sleeps.append, backoff_base=30, max_retries=2)
    client.stop_when(lambda: True)
    with pytest.raises(Interrupted):
        client.get("organizations/")
    assert sleeps == [] and len(script.requests) == 1


def window(limit, remaining, reset_in, **more):
    return {"X-Sentry-Rate-Limit-Limit": str(limit), "X-Sentry-Rate-Limit-Remaining": str(remaining),
            "X-Sentry-Rate-Limit-Reset": str(SERVER_NOW + reset_in), **more}


def test_remaining_zero_paces_the_next_request_to_that_endpoint_only(server):
    """Sentry keeps a window per endpoint (FACTS §2): one running out must not hold back the others."""
    url, script = server([
        (200, window(1, 0, 2), []),  # one request per window, and it is spent
        (200, window(40, 39, 2), []),
        (200, {}, []),
    ])
    sleeps = []
    client = client_for(url, sleeps)
    client.get("projects/acme/web/events/")
    assert sleeps == []
    client.get("organizations/acme/issues/")  # another endpoint: its own window, no wait
    assert sleeps == []
    client.get("projects/acme/api/events/")  # the same endpoint for another project: waits for the window
    assert len(sleeps) == 1 and 1.5 <= sleeps[0] <= 2.2, sleeps
    assert [r["path"].split("?")[0] for r in script.requests] == [
        "/api/0/projects/acme/web/events/", "/api/0/organizations/acme/issues/", "/api/0/projects/acme/api/events/"]


def test_a_window_shared_by_endpoints_is_noticed_and_kept_as_one(server):
    """A proxy (or the emulator's --rate-limit) counts all endpoints in one window. The first answer
    from a second endpoint says fewer are left than our own requests to it explain: from then on
    all endpoints wait for that one window."""
    url, script = server([
        (200, window(10, 9, 2), []),
        (200, window(10, 0, 2), []),  # the issues endpoint's first answer: 9 were spent elsewhere
        (200, {}, []),
    ])
    sleeps = []
    client = client_for(url, sleeps)
    client.get("projects/acme/web/events/")
    client.get("organizations/acme/issues/")
    assert sleeps == []
    client.get("projects/acme/web/events/")  # its own window said 9 left, but the window is shared
    assert len(sleeps) == 1 and 1.5 <= sleeps[0] <= 2.2, sleeps


def test_the_last_request_of_a_window_goes_to_one_thread_only(server):
    """One request is left in the window and two threads want it before either is answered: one
    sends, the other waits for the next window. A request is counted as it is sent, not when its
    answer comes back, so the second thread does not find out by a 429."""
    url, script = server([
        (200, window(40, 1, 2), []),
        (200, {}, [], 0.3),
        (200, {}, [], 0.3),
    ])
    sleeps = []
    client = client_for(url, sleeps)
    client.get("projects/acme/web/events/")
    threads = [threading.Thread(target=client.get, args=(f"projects/acme/{slug}/events/",)) for slug in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(script.requests) == 3
    assert len(sleeps) == 1 and 1.5 <= sleeps[0] <= 2.2, sleeps


def test_concurrent_remaining_zero_is_not_a_reason_to_wait(server):
    """ConcurrentRemaining counts the answered request itself: 0 on a route allowing one at a time
    says nothing of the next request, which may go as soon as this one is answered."""
    headers = window(60, 58, 60, **{"X-Sentry-Rate-Limit-ConcurrentLimit": "1",
                                    "X-Sentry-Rate-Limit-ConcurrentRemaining": "0"})
    url, script = server([(200, headers, []), (200, headers, [])])
    sleeps = []
    client = client_for(url, sleeps)
    client.get("projects/acme/web/events/")
    client.get("projects/acme/web/events/")
    assert sleeps == [] and len(script.requests) == 2


def test_concurrent_limit_caps_our_requests_in_flight_to_that_endpoint(server):
    """Three threads read an endpoint allowing one request at a time: they take turns. Before its
    first answer an endpoint gets one request at a time too, since its limit is not known yet."""
    headers = window(60, 50, 60, **{"X-Sentry-Rate-Limit-ConcurrentLimit": "1"})
    url, script = server([(200, headers, [], 0.2) for _ in range(6)])
    client = client_for(url, [])
    threads = [threading.Thread(target=lambda s=slug: [client.get(f"projects/acme/{s}/events/") for _ in range(2)])
               for slug in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(script.requests) == 6
    assert script.most_in_flight == 1


def test_next_request_stays_on_the_configured_host(server):
    """A Link header naming another host must not receive the token: only the cursor is used."""
    url, script = server([
        (200, {"Link": '<https://evil.example/api/0/organizations/acme/issues/?&cursor=0:0:1>; rel="previous"; '
                       'results="false"; cursor="0:0:1", <https://evil.example/api/0/organizations/acme/issues/'
                       '?&cursor=abc:100:0>; rel="next"; results="true"; cursor="abc:100:0"'}, [{"id": "1"}]),
        (200, {"Link": '<https://evil.example/x/?&cursor=n>; rel="next"; results="false"; cursor="n"'}, [{"id": "2"}]),
    ])
    client = client_for(url, [])
    items = [i for page in client.paginate("organizations/acme/issues/", {"query": ""}) for i in page.items]
    assert [i["id"] for i in items] == ["1", "2"]
    assert all(r["host"].startswith("127.0.0.1") for r in script.requests)
    assert "cursor=abc%3A100%3A0" in script.requests[1]["path"] and "query=" in script.requests[1]["path"]


def test_redirect_is_not_followed(server):
    url, script = server([(302, {"Location": "https://elsewhere.example/api/0/"}, b"")])
    with pytest.raises(ApiError, match="redirected to https://elsewhere.example"):
        client_for(url, []).get("organizations/")
    assert len(script.requests) == 1


def test_401_message_is_the_servers_and_hides_the_token(server):
    url, script = server([(401, {}, {"detail": f"Invalid token {TOKEN}"})])
    with pytest.raises(AuthError) as info:
        client_for(url, []).get("organizations/")
    assert info.value.status == 401 and "Invalid token" in str(info.value) and TOKEN not in str(info.value)


def test_json_string_body_of_a_429_becomes_the_message(server):
    body = "You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds"
    url, script = server([(429, {}, body)] * 3)
    client = SentryClient(url, TOKEN, sleep=lambda s: None, max_retries=2, retry_budget=0)
    with pytest.raises(ApiError) as info:
        client.get("organizations/")
    assert info.value.status == 429 and "too frequently" in info.value.message


PERSONAL = b"<html><body>Signed in as jane.doe@example.com from 203.0.113.7 (2001:db8::7)," \
           b" session sntrys_eyJpYXQiOjE3MDAwMDAwMDB9_abcdefghijkl</body></html>"


@pytest.mark.parametrize("status, kind", [(200, "text/html; charset=utf-8"), (400, "text/plain")])
def test_a_body_that_is_not_json_is_described_not_quoted(server, status, kind):
    """An error page or a 200 that is not JSON was quoted into the error, which goes to
    _sync_runs.error and `status`: it held a member's email. Its status, type and length are told,
    and a snippet with emails, addresses and tokens masked."""
    url, script = server([(status, {"Content-Type": kind}, PERSONAL)])
    client = SentryClient(url, TOKEN, sleep=lambda s: None, max_retries=0)
    with pytest.raises(ApiError) as info:
        client.get("organizations/")
    text = str(info.value)
    for secret in ("jane.doe", "example.com", "203.0.113.7", "2001:db8::7", "eyJpYXQiOjE3MDAwMDAwMDB9"):
        assert secret not in text, text
    assert kind.split(";")[0] in text and f"{len(PERSONAL)} bytes" in text, text
    assert "Signed in as" in text  # still a hint of what the server said


def test_legacy_api_key_uses_basic_auth_with_empty_password(server):
    import base64

    url, script = server([(200, {}, [])])
    SentryClient(url, "legacykey123", auth_scheme="basic").get("organizations/")
    assert script.requests[0]["authorization"] == "Basic " + base64.b64encode(b"legacykey123:").decode()


def test_region_url_followed_only_within_the_site():
    client = SentryClient("https://sentry.io", TOKEN)
    assert client.use_region("https://de.sentry.io") and client.base_url == "https://de.sentry.io/api/0"
    other = SentryClient("https://sentry.io", TOKEN)
    assert not other.use_region("https://sentry.io.evil.example") and other.base_url == "https://sentry.io/api/0"
    plain = SentryClient("https://sentry.io", TOKEN)
    assert not plain.use_region("http://us.sentry.io")  # never downgrade to plain HTTP
    for here, there in [("https://sentry.example.com", "https://evil.example.com"),
                        ("https://myorg.herokuapp.com", "https://attacker.herokuapp.com"),
                        ("https://10.0.0.5", "https://1.0.0.5"),
                        ("https://192.168.1.10:9000", "https://7.168.1.10")]:
        client = SentryClient(here, TOKEN)
        assert not client.use_region(there) and client.base_url == here + "/api/0"  # self-hosted stays put


def test_refused_cursor_restarts_the_walk_from_its_first_page(server):
    nxt = '<http://h/x/?&cursor=0:1:0>; rel="next"; results="true"; cursor="0:1:0"'
    last = '<http://h/x/?&cursor=0:2:0>; rel="next"; results="false"; cursor="0:2:0"'
    url, script = server([
        (200, {"Link": nxt}, [{"id": "1"}]),
        (400, {}, {"detail": "Invalid cursor parameter."}),
        (200, {"Link": nxt}, [{"id": "1"}]),
        (200, {"Link": last}, [{"id": "2"}]),
    ])
    pages = list(client_for(url, []).paginate("x/"))
    assert [i["id"] for p in pages for i in p.items] == ["1", "1", "2"]
    assert "cursor" not in script.requests[2]["path"]  # the walk started over


def test_dsn_auth_header(server):
    url, script = server([(200, {}, [])])
    dsn = "https://public@o1.ingest.example/2"
    SentryClient(url, dsn, auth_scheme="dsn").get("projects/acme/web/events/")
    assert script.requests[0]["authorization"] == f"DSN {dsn}"


def _response(date: float, **headers) -> "requests.Response":
    import requests

    response = requests.Response()
    response.status_code = 200
    response.headers["Date"] = email.utils.formatdate(date, usegmt=True)
    response.headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return response


def test_wait_for_reset_reads_the_servers_clock_finer_than_the_date_header(monkeypatch):
    """Date says whole seconds: near a second's end, Reset - Date overstates the wait by almost a
    second (half the throughput under a 1-second window). Once the server's clock is seen to run
    with ours, a response just after its second ticked pins it, and later waits are measured from
    that; a clock that stands still (or jumps) is not trusted past its Date."""
    import sentry_mirror.fetching.client as client_module

    local = {"now": 5_000.0}
    monkeypatch.setattr(client_module.time, "time", lambda: local["now"])
    client = SentryClient("http://127.0.0.1:9", TOKEN)
    for tick in range(4):  # the server's second ticks as ours do; each answer arrives just after
        client._observe(_response(SERVER_NOW + tick), _Window())
        local["now"] += 1.0
    local["now"] -= 1.0 - 0.9  # now 0.9 s into the server's second SERVER_NOW + 3
    late = _response(SERVER_NOW + 3, X_Sentry_Rate_Limit_Reset=str(SERVER_NOW + 4))
    assert client._reset_delay(late) == pytest.approx(0.1 + 0.05, abs=0.01)
    # without evidence that the clock runs, the same answer is read the safe way: a whole second
    fresh = SentryClient("http://127.0.0.1:9", TOKEN)
    fresh._observe(_response(SERVER_NOW + 3), _Window())
    assert fresh._reset_delay(late) == pytest.approx(1.0 + 0.05, abs=0.01)
    # a server clock standing still (a test server's) is noticed, and trusted no further than Date
    for _ in range(3):
        local["now"] += 1.0
        client._observe(_response(SERVER_NOW + 3), _Window())
    assert client._reset_delay(late) == pytest.approx(1.0 + 0.05, abs=0.01)


@pytest.mark.parametrize("reason, attempts", [
    ("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:1006)", 2),
    ("[SSL] record layer failure (_ssl.c:1000)", 1),  # https to plain HTTP, OpenSSL 3.2 and later
    ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate", 1),
])
def test_a_tls_handshake_cut_short_is_retried_and_other_tls_failures_are_not(monkeypatch, reason, attempts):
    import requests as requests_module

    calls = []

    def failing_get(self, url, **kwargs):
        calls.append(url)
        raise requests_module.exceptions.SSLError(reason)

    monkeypatch.setattr(requests_module.Session, "get", failing_get)
    client = SentryClient("https://sentry.example", "tok-tls-1234", backoff_base=0.001, sleep=lambda s: None)
    with pytest.raises(ApiError, match="TLS failed") as raised:
        client.get("organizations/")
    assert len(calls) == attempts
    assert ("--ca-bundle" in str(raised.value)) == (attempts == 1)


def test_an_answer_cut_short_every_time_is_retried_and_said_as_such():
    """A body cut short was taken for an unreachable server: 2 attempts, 'check --url'."""
    from sentry_mirror.emulator import Emulator

    with Emulator(seed=1, scale="tiny", token="t") as emu:
        requests.post(emu.url + "/_emulator/faults", json={"spec": "kind=truncate,rate=1"}, timeout=10)
        client = SentryClient(emu.url, "t", backoff_base=0.01, backoff_cap=0.05, max_retries=4)
        with pytest.raises(ApiError) as info:
            client.get("organizations/")
        fired = sum(r.get("fired", 0) for r in requests.get(emu.url + "/_emulator/faults", timeout=10).json())
    assert fired == 5  # every retry was spent
    assert "cut short 5 times (IncompleteRead(" in str(info.value) and "check --url" not in str(info.value)


def test_an_empty_page_that_says_more_follow_is_followed(server):
    """Sentry's paginators may answer an empty page with results="true"; only results="false" ends
    a walk, whatever the page holds."""
    more = '<http://h/x/?&cursor=0:1:0>; rel="next"; results="true"; cursor="0:1:0"'
    last = '<http://h/x/?&cursor=0:2:0>; rel="next"; results="false"; cursor="0:2:0"'
    url, script = server([(200, {"Link": more}, []), (200, {"Link": more}, []), (200, {"Link": last}, [{"id": "1"}])])
    pages = list(client_for(url, []).paginate("x/"))
    assert [i["id"] for p in pages for i in p.items] == ["1"]
    assert len(script.requests) == 3  # the same cursor answered empty is asked again


def test_a_page_of_items_pointing_at_itself_fails_the_walk(server):
    """A cursor repeated after a page of items would loop for ever; stopping there ended the walk
    as if it were done. It is an error the stream reports."""
    loop = '<http://h/x/?&cursor=0:1:0>; rel="next"; results="true"; cursor="0:1:0"'
    url, _ = server([(200, {"Link": loop}, [{"id": "1"}]), (200, {"Link": loop}, [{"id": "2"}])])
    with pytest.raises(ApiError, match="repeated cursor"):
        list(client_for(url, []).paginate("x/"))
