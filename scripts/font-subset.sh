#!/usr/bin/env bash
# Rebuild crates/core/assets/DejaVuSans-subset.ttf, the font the PNG heatmaps are drawn with:
# Debian's DejaVu Sans cut down to the characters the charts use (Latin-1, dashes, the
# ellipsis, arrows and comparison signs). fonttools comes from PyPI into a throwaway venv.
#
#     scripts/font-subset.sh          # writes the asset; commit it if it changed
set -euo pipefail
cd "$(dirname "$0")/.."

source_font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
[[ -f $source_font ]] || { echo "font-subset: $source_font is missing (apt-get install fonts-dejavu-core)" >&2; exit 1; }

venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet 'fonttools==4.68.0'
"$venv/bin/pyftsubset" "$source_font" \
  --unicodes='U+0020-007E,U+00A0-00FF,U+2013-2014,U+2019,U+2026,U+2192,U+2212,U+2264-2265' \
  --name-IDs=0,1,2,3,4,5,6 \
  --output-file=crates/core/assets/DejaVuSans-subset.ttf
echo "wrote crates/core/assets/DejaVuSans-subset.ttf"
