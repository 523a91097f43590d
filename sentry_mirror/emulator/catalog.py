"""Static vocabulary the world generator draws from: projects, platforms, errors, users.

Kept apart from the generator so the shapes of generated data are easy to read and extend.
"""

from __future__ import annotations

from dataclasses import dataclass

# (slug, name, project platform, release package, team slug)
PROJECTS = [
    ("backend", "Backend", "python", "backend", "platform"),
    ("web-app", "Web App", "javascript-react", "web", "frontend"),
    ("api-gateway", "API Gateway", "node", "gateway", "platform"),
    ("payments", "Payments", "java", "payments", "platform"),
    ("ios-app", "iOS App", "cocoa", "ios", "mobile"),
    ("ingest", "Ingest", "go", "ingest", "platform"),
    ("worker", "Worker", "python", "worker", "platform"),
    ("dashboard", "Dashboard", "javascript-react", "dashboard", "frontend"),
    ("android-app", "Android App", "android", "android", "mobile"),
    ("search", "Search", "go", "search", "platform"),
    ("billing", "Billing", "node", "billing", "platform"),
    ("notifications", "Notifications", "python", "notifications", "platform"),
]



def projects(n: int) -> list[tuple[str, str, str, str, str]]:
    """The first `n` projects: the catalog's, then numbered copies of them (`backend-2`, releasing
    `backend2@…`), so a scale may have more projects than the catalog names."""
    out = list(PROJECTS[:n])
    copy = 2
    while len(out) < n:
        out.extend((f"{slug}-{copy}", f"{name} {copy}", platform, f"{package}{copy}", team)
                   for slug, name, platform, package, team in PROJECTS[: n - len(out)])
        copy += 1
    return out


TEAMS = [("platform", "Platform"), ("frontend", "Frontend"), ("mobile", "Mobile")]


@dataclass(frozen=True)
class Platform:
    """How errors of one SDK family look: event platform, SDK, runtime and error vocabulary."""

    event_platform: str
    sdk_name: str
    sdk_version: str
    runtime: tuple[str, str] | None
    os_choices: tuple[tuple[str, str], ...]
    browsers: tuple[tuple[str, str], ...]
    errors: tuple[tuple[str, str], ...]  # (exception type, value template with {n})
    modules: tuple[str, ...]
    functions: tuple[str, ...]
    file_ext: str
    mechanism: str
    web: bool


_LINUX = (("Linux", "5.15.0"), ("Linux", "6.1.0"))

PLATFORMS = {
    "python": Platform(
        "python", "sentry.python", "1.45.0", ("CPython", "3.11.8"), _LINUX, (),
        (
            ("ValueError", "invalid literal for int() with base 10: 'id_{n}'"),
            ("KeyError", "'customer_{n}'"),
            ("TypeError", "unsupported operand type(s) for +: 'NoneType' and 'int'"),
            ("AttributeError", "'NoneType' object has no attribute 'account_{n}'"),
            ("ZeroDivisionError", "division by zero"),
            ("IntegrityError", "duplicate key value violates unique constraint \"order_{n}_key\""),
            ("OperationalError", "could not connect to server: Connection refused (shard {n})"),
            ("TimeoutError", "Request to billing timed out after {n}ms"),
        ),
        ("app.views.checkout", "app.services.billing", "app.tasks.sync", "app.models.user",
         "app.api.handlers", "app.utils.cache"),
        ("handle_request", "process_payment", "sync_account", "get_user", "apply_discount",
         "render_invoice", "refresh_token"),
        ".py", "django", True,
    ),
    "javascript": Platform(
        "javascript", "sentry.javascript.react", "7.112.2", None,
        (("Windows", "10"), ("Mac OS X", "14.4"), ("iOS", "17.4"), ("Android", "14")),
        (("Chrome", "124.0.0"), ("Firefox", "125.0"), ("Safari", "17.4"), ("Edge", "124.0.0")),
        (
            ("TypeError", "Cannot read properties of undefined (reading 'item{n}')"),
            ("ReferenceError", "widget{n} is not defined"),
            ("Error", "Network request failed: /api/v{n}/cart"),
            ("ChunkLoadError", "Loading chunk {n} failed."),
            ("SyntaxError", "Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON ({n})"),
            ("UnhandledRejection", "Non-Error promise rejection captured with value: {n}"),
        ),
        ("src/components/Checkout", "src/components/Cart", "src/pages/Dashboard",
         "src/hooks/useSession", "src/api/client"),
        ("handleClick", "onSubmit", "useEffect", "renderRow", "fetchJson", "parseResponse"),
        ".tsx", "onerror", True,
    ),
    "node": Platform(
        "node", "sentry.javascript.node", "7.112.2", ("node", "v20.11.1"), _LINUX, (),
        (
            ("Error", "connect ECONNREFUSED 10.0.{n}.7:5432"),
            ("TypeError", "Cannot destructure property 'user{n}' of undefined"),
            ("RangeError", "Maximum call stack size exceeded (depth {n})"),
            ("SequelizeDatabaseError", "relation \"orders_{n}\" does not exist"),
            ("FetchError", "request to https://upstream/{n} failed, reason: socket hang up"),
        ),
        ("lib/routes/orders", "lib/middleware/auth", "lib/db/pool", "lib/clients/upstream"),
        ("handler", "authenticate", "query", "forward", "serialize"),
        ".js", "onunhandledrejection", True,
    ),
    "java": Platform(
        "java", "sentry.java.spring-boot", "7.8.0", ("OpenJDK", "17.0.10"), _LINUX, (),
        (
            ("NullPointerException", "Cannot invoke \"Account.getId()\" because \"account{n}\" is null"),
            ("IllegalStateException", "Ledger {n} is closed"),
            ("IllegalArgumentException", "Invalid currency code: X{n}"),
            ("ConcurrentModificationException", "concurrent update of batch {n}"),
            ("SocketTimeoutException", "Read timed out after {n} ms"),
            ("DataIntegrityViolationException", "could not execute statement; constraint [fk_{n}]"),
        ),
        ("com.acme.payments.ChargeService", "com.acme.payments.LedgerRepository",
         "com.acme.payments.api.PaymentController", "com.acme.payments.FxRates"),
        ("processCharge", "save", "capture", "refund", "convert"),
        ".java", "UncaughtExceptionHandler", False,
    ),
    "cocoa": Platform(
        "cocoa", "sentry.cocoa", "8.24.0", None, (("iOS", "17.4.1"), ("iOS", "16.7.2")), (),
        (
            ("NSInvalidArgumentException", "-[__NSCFString count]: unrecognized selector sent to instance 0x{n}"),
            ("EXC_BAD_ACCESS", "KERN_INVALID_ADDRESS at 0x{n}"),
            ("NSRangeException", "index {n} beyond bounds [0 .. 3]"),
            ("SIGABRT", "Signal 6, Code 0 (thread {n})"),
        ),
        ("CheckoutViewController", "FeedViewModel", "ImageCache", "SessionManager"),
        ("submit:", "reloadData", "loadImage:", "refreshSession"),
        ".swift", "mach", False,
    ),
    "go": Platform(
        "go", "sentry.go", "0.27.0", ("go", "go1.22.1"), _LINUX, (),
        (
            ("*errors.errorString", "unexpected EOF reading batch {n}"),
            ("*net.OpError", "dial tcp 10.1.{n}.3:9092: connect: connection refused"),
            ("*url.Error", "Post \"https://hooks/{n}\": context deadline exceeded"),
            ("runtime.Error", "invalid memory address or nil pointer dereference ({n})"),
            ("*pq.Error", "pq: deadlock detected (tx {n})"),
        ),
        ("github.com/acme/svc/worker", "github.com/acme/svc/store", "github.com/acme/svc/kafka"),
        ("(*Worker).Process", "(*Store).Put", "(*Consumer).Poll", "handleBatch"),
        ".go", "generic", False,
    ),
}
PLATFORMS["android"] = Platform(
    "java", "sentry.java.android", "7.8.0", ("Android", "14"), (("Android", "14"), ("Android", "13")), (),
    PLATFORMS["java"].errors[:4],
    ("com.acme.app.ui.FeedFragment", "com.acme.app.data.SyncWorker", "com.acme.app.net.ApiClient"),
    ("onViewCreated", "doWork", "execute", "bind"),
    ".kt", "UncaughtExceptionHandler", False,
)


def platform_family(project_platform: str) -> Platform:
    """Map a project platform (e.g. `javascript-react`) to its error vocabulary."""
    if project_platform.startswith("javascript"):
        return PLATFORMS["javascript"]
    return PLATFORMS[project_platform]


FIRST_NAMES = ("ada", "alan", "grace", "linus", "margaret", "dennis", "barbara", "ken", "frances",
               "edsger", "radia", "john", "sophie", "tim", "katherine", "guido")
LAST_NAMES = ("lovelace", "turing", "hopper", "torvalds", "hamilton", "ritchie", "liskov",
              "thompson", "allen", "dijkstra", "perlman", "backus", "wilson", "lee", "johnson")

BREADCRUMB_MESSAGES = (
    ("navigation", "info", "Navigated to /checkout"),
    ("http", "info", "GET /api/0/cart [200]"),
    ("query", "info", "SELECT * FROM orders WHERE id = %s"),
    ("ui.click", "info", "button#submit"),
    ("console", "warning", "Retrying request (attempt 2)"),
)

SHORT_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def base32(number: int) -> str:
    """Encode like Sentry's short-id suffix (Crockford-style base32)."""
    digits = ""
    while True:
        number, rem = divmod(number, 32)
        digits = SHORT_ID_ALPHABET[rem] + digits
        if number == 0:
            return digits
