"""Check that only the kernels' x86-64-v3/v4 variants hold instructions a baseline x86-64 CPU
lacks (cpp/include/eulerflow/multiversion.hpp).

Disassembles (objdump) the core's object files in a CMake build directory and counts the
VEX/EVEX-encoded instructions (ymm/zmm/mask registers, v-prefixed ops) and the BMI/LZCNT/
POPCNT ones, per function. Every one must lie in a function named ``*_x86_64_v3`` or
``*_x86_64_v4``, and the linked module must hold exactly as many as those functions
(link-time optimized files have no machine code in their objects: the count of the module
covers them).

    python tools/check_isa_leaks.py build/cp311-cp311-linux_x86_64

``tests/test_isa_dispatch.py`` runs the same check on the build of the tested module.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

#: Scalar instructions of BMI1/BMI2/LZCNT/POPCNT, which x86-64-v3 may use and the baseline lacks.
SCALAR_EXTENSIONS = frozenset({
    "andn", "bextr", "blsi", "blsmsk", "blsr", "bzhi", "mulx", "pdep", "pext", "rorx",
    "sarx", "shlx", "shrx", "tzcnt", "lzcnt", "popcnt",
})
_FUNCTION = re.compile(r"^[0-9a-f]+ <(.*)>:$")


def _beyond_baseline(instruction: str) -> bool:
    mnemonic = instruction.split()[0] if instruction else ""
    return ("%ymm" in instruction or "%zmm" in instruction
            or (mnemonic.startswith("k") and "%k" in instruction)
            or (mnemonic.startswith("v") and mnemonic not in ("verr", "verw"))
            or mnemonic in SCALAR_EXTENSIONS)


def count(path: Path) -> dict[str, int]:
    """Instructions beyond the baseline in ``path`` (an object file or the module), per
    function (``"?"`` where the file has no symbols)."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", str(path)],
                         capture_output=True, text=True, check=True).stdout
    counts: dict[str, int] = {}
    function = "?"
    for line in out.splitlines():
        m = _FUNCTION.match(line)
        if m:
            function = m.group(1)
        elif "\t" in line and _beyond_baseline(line.split("\t", 1)[1].strip()):
            counts[function] = counts.get(function, 0) + 1
    return counts


def check(build_dir: Path) -> tuple[int, dict[str, int], int]:
    """(instructions in the variants, {file: function -> count} outside them, instructions in
    the linked module) for the CMake build directory ``build_dir``."""
    in_variants, stray = 0, {}
    for obj in sorted(build_dir.glob("CMakeFiles/_core.dir/**/*.o")):
        for function, n in count(obj).items():
            if re.search(r"_x86_64_v[34]\b", function):
                in_variants += n
            else:
                stray[f"{obj.name}: {function}"] = n
    module = next(build_dir.glob("_core*.so"))
    return in_variants, stray, sum(count(module).values())


def main(argv: list[str]) -> int:
    build_dir = Path(argv[0]) if argv else next(Path("build").glob("*"))
    in_variants, stray, in_module = check(build_dir)
    print(f"{in_variants} instructions beyond x86-64 in the v3/v4 variants, {in_module} in "
          f"the module; outside the variants: {sum(stray.values())}")
    for where, n in stray.items():
        print(f"  {where}: {n}")
    return 0 if not stray and in_module == in_variants else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
