"""A SoftHSM2 token for the PKCS#11 tests, made once per test session in a temporary directory.

Skipped when SoftHSM2 is not installed (failed under CI=true, like tests/servers.py). The
library reads SOFTHSM2_CONF when it is first loaded and sees only the tokens that existed then,
so the fixture sets it and makes the token before anything in this process loads the library.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

LIBRARY_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "obp-test"


@dataclass(frozen=True)
class SoftHsmToken:
    """An initialised SoftHSM2 token: how to reach it in this process and in a child one."""

    library: str
    label: str
    pin: str = field(repr=False)
    conf: Path
    # For a child `obp serve`: OBP_KEYSTORE_URL=url plus these variables (the PIN among them).
    url: str
    env: dict[str, str] = field(repr=False)

    def session(self) -> pkcs11.Session:
        """A logged-in read-write session; only while no key store in this process is open."""
        return (
            pkcs11.lib(self.library)
            .get_token(token_label=self.label)
            .open(rw=True, user_pin=self.pin)
        )

    def purge(self, label_prefix: str) -> None:
        """Delete every object whose label starts with `label_prefix`."""
        session = self.session()
        try:
            doomed = [
                obj
                for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
                if str(obj[Attribute.LABEL]).startswith(label_prefix)
            ]
            for obj in doomed:
                obj.destroy()
        finally:
            session.close()


def _unavailable(reason: str) -> NoReturn:
    reason = f"PKCS#11 tests need SoftHSM2: {reason}; install the Debian package softhsm2"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: no backend test may be skipped)")
    pytest.skip(reason)


def make_token(directory: Path) -> SoftHsmToken:
    """Configure SoftHSM2 under `directory` (setting SOFTHSM2_CONF) and initialise a token."""
    tool = shutil.which("softhsm2-util")
    library = next((path for path in LIBRARY_CANDIDATES if Path(path).exists()), None)
    if tool is None:
        _unavailable("softhsm2-util is not on PATH")
    if library is None:
        _unavailable(f"libsofthsm2.so is in none of {', '.join(LIBRARY_CANDIDATES)}")
    tokens = directory / "tokens"
    tokens.mkdir(mode=0o700)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    done = subprocess.run(
        [tool, "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", pin, "--so-pin", so_pin],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"softhsm2-util --init-token failed: {done.stderr.strip() or done.stdout}")
    return SoftHsmToken(
        library=library,
        label=TOKEN_LABEL,
        pin=pin,
        conf=conf,
        url=f"pkcs11://{library}?token={TOKEN_LABEL}",
        env={"SOFTHSM2_CONF": str(conf), "OBP_KEYSTORE_PIN": pin},
    )


_made: SoftHsmToken | None = None


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmToken:
    """A fresh SoftHSM2 token shared by the whole session (tests clean up their own keys).

    Made once per process even if several modules import this fixture: the library, once
    loaded, would not see a second token directory.
    """
    global _made
    if _made is None:
        _made = make_token(tmp_path_factory.mktemp("softhsm"))
    return _made
