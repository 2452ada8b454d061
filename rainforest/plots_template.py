"""The HTML template that lets ``dvc plots show`` and ``dvc plots diff`` draw offline.

DVC's own page loads Vega, Vega-Lite and vega-embed from a public CDN, so on a
machine without a network its Vega plots (training curves, precision-recall,
confusion, per-species tables) do not draw. :func:`page` builds a template with
the three libraries inlined; ``.dvc/config`` names the committed result,
``.dvc/plots/offline.html`` (``plots.html_template``), so a plain
``dvc plots show`` uses it. A template without DVC's ``{scripts}`` placeholder
gets none of DVC's CDN script tags.

``python -m rainforest.plots_template`` rebuilds it from the npm registry with
``npm pack``, each package held to its pinned version and integrity
(:data:`LIBRARIES`). CI needs no npm: the result is committed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rainforest.atomic_writes import write_text
from rainforest.errors import PipelineError

#: Where ``.dvc/config``'s ``plots.html_template`` (``plots/offline.html``, relative to ``.dvc``) points.
TEMPLATE = Path(__file__).resolve().parents[1] / ".dvc" / "plots" / "offline.html"

#: What DVC fills in (``dvc_render.html.HTML``): the plots, and the refresh tag of ``--live``.
PLACEHOLDERS = ("{plot_divs}", "{refresh_tag}")

#: The BSD 3-Clause licence of all three packages (vega-lite's and vega-embed's LICENSE files; vega's
#: package.json declares the same licence and ships no LICENSE file).
LICENCE = """Copyright (c) 2015, University of Washington Interactive Data Lab.
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its contributors
   may be used to endorse or promote products derived from this software
   without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE."""


@dataclass(frozen=True)
class Library:
    """One npm package whose browser bundle the template inlines."""

    name: str
    version: str
    #: The registry's integrity of the package's tarball (what ``npm pack --json`` reports).
    integrity: str
    #: The bundle inside the tarball.
    bundle: str
    licence: str = "BSD-3-Clause"


#: In the order the page loads them: vega-embed needs the other two. The versions of DVC's Vega-Lite v5
#: templates' major versions (vega 5, vega-lite 5, vega-embed 6), the newest of each on the registry.
LIBRARIES = (
    Library(
        "vega",
        "5.33.1",
        "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
        "build/vega.min.js",
    ),
    Library(
        "vega-lite",
        "5.23.0",
        "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
        "build/vega-lite.min.js",
    ),
    Library(
        "vega-embed",
        "6.29.0",
        "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
        "build/vega-embed.min.js",
    ),
)


def page(bundles: dict[Library, str]) -> str:
    """The template: DVC's page (a title, the plots' table spacing, ``{refresh_tag}`` and
    ``{plot_divs}``) with each library's bundle inlined in a script tag, its version and licence
    stated at the top.

    Raises
    ------
    PipelineError
        If a bundle holds ``</script`` (it would end its tag early) or one of DVC's placeholders
        (DVC would replace it inside the code).
    """
    for library, code in bundles.items():
        for text in ("</script", "{scripts}", *PLACEHOLDERS):
            if text.lower() in code.lower():
                raise PipelineError(f"{library.name} {library.version}: {library.bundle} holds {text!r}")
    stated = "\n".join(
        f"  {library.name} {library.version} ({library.bundle} of the npm package), {library.licence}"
        for library in bundles
    )
    scripts = "\n".join(
        f"<script>/* {library.name} {library.version}, {library.licence} */\n{code}\n</script>"
        for library, code in bundles.items()
    )
    return f"""<!DOCTYPE html>
<!--
The page of dvc plots show and dvc plots diff, drawn offline (.dvc/config: plots.html_template).
Written by python -m rainforest.plots_template; rebuild it there rather than edit it. It inlines:
{stated}
under this licence:

{LICENCE}
-->
<html>
<head>
    <meta charset="utf-8">
    {{refresh_tag}}
    <title>DVC Plot</title>
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def fetch(library: Library, folder: Path) -> str:
    """The bundle of ``library``, from the npm registry (``npm pack`` into ``folder``).

    Raises
    ------
    PipelineError
        If npm fails, or the tarball is not the pinned one (integrity or licence differ).
    """
    spec = f"{library.name}@{library.version}"
    try:
        result = subprocess.run(
            ["npm", "pack", spec, "--json", "--pack-destination", str(folder)], capture_output=True, text=True
        )
    except FileNotFoundError:
        raise PipelineError("npm not found: install Node.js's npm (Debian: apt-get install npm)") from None
    if result.returncode != 0:
        raise PipelineError(f"npm pack {spec} failed: {result.stderr.strip()}")
    (packed,) = json.loads(result.stdout)
    if packed["integrity"] != library.integrity:
        raise PipelineError(f"{spec}: the registry's tarball has integrity {packed['integrity']}, not the pinned one")
    with tarfile.open(folder / packed["filename"]) as tarball:
        manifest = json.load(tarball.extractfile("package/package.json"))  # type: ignore[arg-type]  # a file member
        code = tarball.extractfile(f"package/{library.bundle}").read().decode()  # type: ignore[union-attr]  # likewise
    if manifest.get("license") != library.licence:
        raise PipelineError(f"{spec}: licence {manifest.get('license')!r}, not {library.licence}")
    return code


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        bundles = {library: fetch(library, Path(folder)) for library in LIBRARIES}
    write_text(TEMPLATE, page(bundles))
    print(f"wrote {TEMPLATE} ({TEMPLATE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    from rainforest.cli import run_program

    sys.exit(run_program("plots_template", main))
