"""What the conformance scripts share: mismatches, expectations, and running one scenario of a plan.

A script defines its scenarios (functions taking the plan and returning a dict of what they saw) and ends with
`sys.exit(scenario.main(SCENARIOS))`. The script's directory is first on `sys.path`, so `import scenario` finds
this file.
"""

import json
import sys
import traceback


class Mismatch(Exception):
    """The client saw something the real service would not have answered."""


def expect_equal(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, expected {want!r}")


def expect(what, condition, detail=""):
    if not condition:
        raise Mismatch(f"{what}: {detail}" if detail else what)


def main(scenarios):
    """Runs the scenario named by the plan in argv[1]; prints one JSON line and returns 0, or reports and 1."""
    plan = json.loads(sys.argv[1])
    scenario = scenarios[plan["scenario"]]
    try:
        result = scenario(plan)
    except Mismatch as mismatch:
        print(f"MISMATCH in {plan['scenario']}: {mismatch}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - any client exception is a conformance failure worth its traceback
        print(f"UNEXPECTED ERROR in {plan['scenario']}:", file=sys.stderr)
        traceback.print_exc()
        return 1
    print(json.dumps({"scenario": plan["scenario"], "ok": True, **result}))
    return 0
