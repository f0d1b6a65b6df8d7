#!/usr/bin/env bash
# Packaging check for the PluginMm NuGet package:
#   1. dotnet pack Generators/PluginMm.Package -> a local folder feed;
#   2. the package holds the generator, code fixes and Scriban.Signed.dll under analyzers/dotnet/cs, the attributes
#      under lib/net10.0 and the buildTransitive props;
#   3. a throwaway consumer (tests/PackageConsumer, copied to a temp dir, restored from the local feed only, with its
#      own package folder so no stale PluginMm is reused) builds and runs with a good backend, and fails with PMM0001
#      naming GetFolioNoAlloc with a broken one. Neither build may show CS8785 (generator failed to load/run).
# Usage: bash .ci/pack-check.sh            (exit 0 = all checks passed)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/pluginmm-pack.XXXXXX")"
trap 'rm -rf "$work"' EXIT
feed="$work/feed"
fail() { echo "pack-check: FAIL: $*" >&2; exit 1; }

echo "pack-check: packing into $feed"
dotnet pack "$repo/Generators/PluginMm.Package/PluginMm.Package.csproj" -c Release -o "$feed" -nologo -v quiet >"$work/pack.log" 2>&1 \
  || { cat "$work/pack.log"; fail "dotnet pack failed"; }
nupkg="$(ls "$feed"/PluginMm.*.nupkg | head -n1)"
[ -f "$nupkg" ] || fail "no PluginMm package produced"
version="$(basename "$nupkg" .nupkg)"; version="${version#PluginMm.}"
echo "pack-check: $(basename "$nupkg") (version $version)"

listing="$(unzip -Z1 "$nupkg")"
for entry in \
  analyzers/dotnet/cs/PluginMm.Generators.dll \
  analyzers/dotnet/cs/PluginMm.Generators.CodeFixes.dll \
  analyzers/dotnet/cs/Scriban.Signed.dll \
  lib/net10.0/PluginMm.Abstractions.dll \
  buildTransitive/PluginMm.props; do
  grep -qx "$entry" <<<"$listing" || fail "package lacks $entry"
done
if grep -q '^lib/.*Generators' <<<"$listing"; then fail "the generator must not be under lib/"; fi
if grep -q '^analyzers/.*Abstractions' <<<"$listing"; then fail "Abstractions must not be under analyzers/"; fi
echo "pack-check: package layout ok"

make_consumer() { # $1 = name, $2 = source template
  local dir="$work/$1"
  mkdir -p "$dir"
  cp "$repo/tests/PackageConsumer/Consumer.csproj.template" "$dir/Consumer.csproj"
  cp "$repo/tests/PackageConsumer/$2" "$dir/Program.cs"
  cat >"$dir/nuget.config" <<NUGET
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="pluginmm-local" value="$feed" />
  </packageSources>
</configuration>
NUGET
  echo "$dir"
}

build_consumer() { # $1 = dir, $2 = log
  (cd "$1" && dotnet build -nologo -p:PluginMmVersion="$version" -p:RestorePackagesPath="$work/packages" -p:UseSharedCompilation=false) >"$2" 2>&1
}

good="$(make_consumer good Good.cs.template)"
build_consumer "$good" "$work/good.log" || { cat "$work/good.log"; fail "the good consumer did not build"; }
if grep -q CS8785 "$work/good.log"; then cat "$work/good.log"; fail "CS8785: the generator failed in the consumer build"; fi
run_out="$(cd "$good" && dotnet run --no-build 2>&1)" || { echo "$run_out"; fail "the good consumer's table did not work"; }
echo "pack-check: good consumer ran: $run_out"
grep -q "the cached folio" <<<"$run_out" || fail "unexpected output from the good consumer"

broken="$(make_consumer broken Broken.cs.template)"
if build_consumer "$broken" "$work/broken.log"; then cat "$work/broken.log"; fail "the broken consumer built, expected PMM0001"; fi
if grep -q CS8785 "$work/broken.log"; then cat "$work/broken.log"; fail "CS8785 in the broken consumer build"; fi
grep -q "error PMM0001: Memory type 'Consumer.RamDisk' is missing the required hook 'GetFolioNoAlloc'" "$work/broken.log" \
  || { cat "$work/broken.log"; fail "the broken consumer did not report PMM0001 for GetFolioNoAlloc"; }
echo "pack-check: broken consumer failed as expected: $(grep -m1 -o "error PMM0001: [^(]*" "$work/broken.log")"
echo "pack-check: OK"
