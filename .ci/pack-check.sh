#!/usr/bin/env bash
# Packaging check (issues 2 and 12), what a new user does from an empty folder with only a local feed:
#   1. dotnet pack PluginMm.sln -> a local folder feed: exactly the product packages (PluginMm, PluginMm.Runtime,
#      PluginMm.Backends, PluginMm.Linux), each with a .snupkg, licence expression, readme and repository metadata;
#      PluginMm holds the generator, code fixes and what the generator bundles under analyzers/dotnet/cs, the contract
#      under lib/net10.0, the props under buildTransitive/net10.0 and docs/diagnostics; the others depend on PluginMm;
#   2. a throwaway consumer (tests/PackageConsumer, copied to a temp dir, restored from the local feed only, with its
#      own package folder so no stale PluginMm is reused) builds and runs with a good backend, and fails with PMM0001
#      naming GetFolioNoAlloc with a broken one. Neither build may show CS8785 (generator failed to load/run);
#   3. a second app referencing only PluginMm.Linux serves real page faults of its own process (skipped, with the
#      reason printed, where the host has no userfaultfd);
#   4. a net8.0 consumer fails at restore with NU1202 (not a compile-error cascade);
#   5. the README's C# blocks compile against the packages (.ci/readme-snippets.py; partial ones are skipped by name).
# Usage: bash .ci/pack-check.sh            (exit 0 = all checks passed; the last line says how many)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/pluginmm-pack.XXXXXX")"
trap 'rm -rf "$work"' EXIT
feed="$work/feed"
fail() { echo "pack-check: FAIL: $*" >&2; exit 1; }
checks=0; pass() { checks=$((checks + 1)); }  # each passed check counts as one test in .ci/run's summary

echo "pack-check: packing PluginMm.sln into $feed"
dotnet pack "$repo/PluginMm.sln" -c Release -o "$feed" -nologo -v quiet -p:ContinuousIntegrationBuild=true >"$work/pack.log" 2>&1 \
  || { cat "$work/pack.log"; fail "dotnet pack failed"; }
produced="$(cd "$feed" && ls *.nupkg | sed -E 's/\.[0-9]+\.[0-9]+\.[0-9]+(-[A-Za-z0-9.]+)?\.nupkg$//' | sort | tr '\n' ' ')"
[ "$produced" = "PluginMm PluginMm.Backends PluginMm.Linux PluginMm.Runtime " ] || fail "dotnet pack PluginMm.sln produced: $produced"
nupkg="$(ls "$feed"/PluginMm.[0-9]*.nupkg | head -n1)"
version="$(basename "$nupkg" .nupkg)"; version="${version#PluginMm.}"
echo "pack-check: packages: $produced(version $version)"

for pkg in "$feed"/*.nupkg; do
  id="$(basename "$pkg" ".$version.nupkg")"
  [ -f "$feed/$id.$version.snupkg" ] || fail "$id has no symbol package"
  grep -q '\.pdb$' <<<"$(unzip -Z1 "$feed/$id.$version.snupkg")" || fail "$id.snupkg holds no pdb"
  nuspec="$(unzip -p "$pkg" "$id.nuspec")"
  grep -q '<license type="expression">MIT</license>' <<<"$nuspec" || fail "$id: no MIT licence expression"
  grep -q '<readme>README.md</readme>' <<<"$nuspec" || fail "$id: no package readme"
  grep -Eq '<repository type="git" url="[^"]+" [^>]*commit="[0-9a-f]{40}"' <<<"$nuspec" || fail "$id: no repository url + commit (Source Link)"
  grep -qx LICENSE <<<"$(unzip -Z1 "$pkg")" || fail "$id: no LICENSE file"
  if [ "$id" != PluginMm ]; then
    grep -q "<dependency id=\"PluginMm\" version=\"$version\" include=\"All\" />" <<<"$nuspec" || { echo "$nuspec"; fail "$id does not depend on PluginMm $version with all its assets"; }
    if grep -q Abstractions <<<"$(unzip -Z1 "$pkg")"; then fail "$id carries a second copy of PluginMm.Abstractions"; fi
  fi
done

listing="$(unzip -Z1 "$nupkg")"
for entry in \
  analyzers/dotnet/cs/PluginMm.Generators.dll \
  analyzers/dotnet/cs/PluginMm.Generators.CodeFixes.dll \
  lib/net10.0/PluginMm.Abstractions.dll \
  buildTransitive/net10.0/PluginMm.props \
  docs/diagnostics/PMM0001.md; do
  grep -qx "$entry" <<<"$listing" || fail "package lacks $entry"
done
[ "$(grep -c '^analyzers/dotnet/cs/.*\.dll$' <<<"$listing")" -ge 3 ] || fail "the generator's bundled template engine is not under analyzers/dotnet/cs"
if grep -q '^lib/.*Generators' <<<"$listing"; then fail "the generator must not be under lib/"; fi
if grep -q '^analyzers/.*Abstractions' <<<"$listing"; then fail "Abstractions must not be under analyzers/"; fi
if grep -q '^build[A-Za-z]*/[^/]*$' <<<"$listing"; then fail "a TFM-less build folder would make the package look compatible with net8.0 (hides NU1202)"; fi
echo "pack-check: package layout ok"
pass

make_consumer() { # $1 = name, $2 = source template, $3 = project template (default Consumer)
  local dir="$work/$1"
  mkdir -p "$dir"
  cp "$repo/tests/PackageConsumer/${3:-Consumer}.csproj.template" "$dir/$1.csproj"
  [ -z "$2" ] || cp "$repo/tests/PackageConsumer/$2" "$dir/Program.cs"
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
pass

broken="$(make_consumer broken Broken.cs.template)"
if build_consumer "$broken" "$work/broken.log"; then cat "$work/broken.log"; fail "the broken consumer built, expected PMM0001"; fi
if grep -q CS8785 "$work/broken.log"; then cat "$work/broken.log"; fail "CS8785 in the broken consumer build"; fi
grep -q "error PMM0001: Memory type 'Consumer.RamDisk' is missing the required hook 'GetFolioNoAlloc'" "$work/broken.log" \
  || { cat "$work/broken.log"; fail "the broken consumer did not report PMM0001 for GetFolioNoAlloc"; }
echo "pack-check: broken consumer failed as expected: $(grep -m1 -o "error PMM0001: [^(]*" "$work/broken.log")"
pass
host="$(make_consumer host Host.cs.template Host)"
build_consumer "$host" "$work/host.log" || { cat "$work/host.log"; fail "the PluginMm.Linux-only app did not build"; }
set +e; host_out="$(cd "$host" && timeout 60 dotnet run --no-build 2>&1)"; host_rc=$?; set -e
case "$host_rc" in
  0) echo "pack-check: PluginMm.Linux-only app: $host_out"; pass ;;
  3) echo "pack-check: PluginMm.Linux-only app skipped: $host_out" ;;
  *) echo "$host_out"; fail "the PluginMm.Linux-only app did not serve its page faults (exit $host_rc)" ;;
esac

net8="$(make_consumer net8 "" Net8)"
if (cd "$net8" && dotnet restore -nologo -p:PluginMmVersion="$version" -p:RestorePackagesPath="$work/packages") >"$work/net8.log" 2>&1; then
  cat "$work/net8.log"; fail "a net8.0 consumer restored"
fi
grep -q "error NU1202: Package PluginMm $version is not compatible with net8.0" "$work/net8.log" \
  || { cat "$work/net8.log"; fail "the net8.0 consumer did not get NU1202"; }
echo "pack-check: net8.0 consumer refused at restore: $(grep -m1 -o 'error NU1202: [^.]*' "$work/net8.log")"
pass
snippets="$(make_consumer snippets "" Snippets)"
python3 "$repo/.ci/readme-snippets.py" "$repo/README.md" "$snippets" | sed 's/^/pack-check: README snippets /'
build_consumer "$snippets" "$work/snippets.log" || { cat "$work/snippets.log"; fail "the README's C# code does not compile against the packages"; }
echo "pack-check: README snippets compile against the packages"
pass
echo "pack-check: OK ($checks checks passed)"
