"""scripts/link_order.py: the function order of the release link (build.rs) read from a
callgrind profile, and names matched across builds without their hashes."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("link_order", REPO / "scripts" / "link_order.py")
link_order = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(link_order)

# A callgrind profile (--compress-strings=no --demangle=no): `fn=` starts a function, cost
# lines are "position instructions", and the line after `calls=` is a call's inclusive
# cost, which is not the caller's own.
PROFILE = """\
version: 1
events: Ir
fn=(1) main
1 10
cfn=(2) _ZN5mlmon5proxy3hot17h0123456789abcdefE
calls=1000 5
7 900000
fn=(2) _ZN5mlmon5proxy3hot17h0123456789abcdefE
5 600000
fn=(3) _ZN5mlmon3cli5start17hfedcba9876543210E.llvm.123'2
2 5
fn=(4) 0x0000000000401000
1 3
fn=(5) _ZN5mlmon5proxy3hot17h0123456789abcdefE
6 300000
"""


def test_functions_hottest_first_by_own_instructions(tmp_path):
    f = tmp_path / "callgrind.out"
    f.write_text(PROFILE)
    names = link_order.functions(f)
    # hot: 900 000 of its own (two blocks); main: 10 (the call's 900 000 is hot's, not main's);
    # the unnamed address is dropped; callgrind's '2 (a second context) is not a symbol.
    assert names == ["_ZN5mlmon5proxy3hot17h0123456789abcdefE", "main",
                     "_ZN5mlmon3cli5start17hfedcba9876543210E.llvm.123"]


def test_unhashed_names_match_across_builds():
    a = "_ZN5mlmon5drift6window4push17h0123456789abcdefE.llvm.99"
    b = "_ZN5mlmon5drift6window4push17hffffffffffffffffE"
    assert link_order.unhashed(a) == link_order.unhashed(b) == "_ZN5mlmon5drift6window4pushE"
    assert link_order.unhashed("memcpy") == "memcpy"


def test_committed_list_is_a_symbol_list():
    lines = [line for line in (REPO / "link" / "symbol-order.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert len(lines) > 1000
    assert all(" " not in line for line in lines)
    assert len(set(lines)) == len(lines)
    assert any(line.startswith("_ZN5mlmon") for line in lines)
