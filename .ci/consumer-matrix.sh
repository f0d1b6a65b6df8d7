#!/usr/bin/env bash
# Consumer matrix (issue 13, part 5): the packed PluginMm package in the project shapes users have. Each cell is a
# throwaway project restored from a local feed holding only the freshly packed package, built with
# UseSharedCompilation=false (no compiler server left running). No cell may show CS8785 (generator crash) or AD0001
# (analyzer crash). Cells:
#   nullable-off   Nullable and ImplicitUsings disabled: builds, runs, the table works
#   langversion-8  LangVersion 8: builds, runs
#   langversion-73 LangVersion 7.3: fails with PMM0015 naming LangVersion, and with nothing inside generated code
#   analysis-all   AnalysisMode=All + TreatWarningsAsErrors + ImplicitUsings: builds with no warning
#   names          names differing only in case, memory types in the global namespace (one named MemoryTypeRegistry):
#                  builds, runs, the registry holds all of them
#   types-1000     1,000 memory types: builds, runs, the registry holds 1,000
#   format-crlf    CRLF sources with PMM0001/0002/0003/0009 errors and a notifier with PMM0013: `dotnet format
#                  analyzers --diagnostics ...` fixes them, the project then builds and runs, and no line lost its CR
# Prints "consumer-matrix: <cell>: ok|FAIL ..." per cell and ends with "consumer-matrix: N passed, M failed".
# Takes 383 s on 2 cores shared at load 19 (one pack, seven restores + builds; the 1,000-type cell is the longest). Usage: bash .ci/consumer-matrix.sh
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/pluginmm-matrix.XXXXXX")"
trap 'rm -rf "$work"' EXIT
feed="$work/feed"
passed=0; failed=0
start=$(date +%s)

if ! dotnet pack "$repo/Abstractions/PluginMm.Abstractions/PluginMm.Abstractions.csproj" -c Release -o "$feed" -nologo -v quiet >"$work/pack.log" 2>&1; then
  cat "$work/pack.log"; echo "consumer-matrix: pack FAILED"; echo "consumer-matrix: 0 passed, 1 failed"; exit 1
fi
nupkg="$(ls "$feed"/PluginMm.*.nupkg | head -n1)"
version="$(basename "$nupkg" .nupkg)"; version="${version#PluginMm.}"

project() { # $1 = cell, $2 = extra PropertyGroup XML, $3 = OutputType; writes the csproj and nuget.config
  local dir="$work/$1"; mkdir -p "$dir"
  cat >"$dir/Consumer.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>${3:-Exe}</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <AssemblyName>Consumer.${1//-/}</AssemblyName>
    $2
  </PropertyGroup>
  <ItemGroup><PackageReference Include="PluginMm" Version="$version" /></ItemGroup>
</Project>
XML
  cat >"$dir/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration><packageSources><clear /><add key="pluginmm-local" value="$feed" /></packageSources></configuration>
XML
  echo "$dir"
}

build() { # $1 = dir; log in $1/build.log
  (cd "$1" && dotnet build -nologo -p:RestorePackagesPath="$work/packages" -p:UseSharedCompilation=false) >"$1/build.log" 2>&1
}

crashed() { grep -Eq 'CS8785|AD0001' "$1/build.log"; }

result() { # $1 = cell, $2 = ok (0) or not, $3 = detail, $4 = dir
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "consumer-matrix: $1: ok ($3)";
  else failed=$((failed + 1)); echo "consumer-matrix: $1: FAIL ($3)"; [ -n "${4:-}" ] && tail -n 40 "$4/build.log"; fi
}

# A memory type whose hooks call the public PageCacheHooks, and a Main that drives its table.
memory_type() { # $1 = namespace line, $2 = class name, $3 = memory type name, $4 = "?" or "" (nullable annotation)
  cat <<CS
$1
[PluginMm.MemoryType("$3", Backing = PluginMm.Backing.PageCache, Modes = PluginMm.UffdModes.Missing | PluginMm.UffdModes.Minor)]
internal static partial class $2
{
    internal static bool CanUserfault(in PluginMm.VmaView vma, PluginMm.UffdModes modes) { return vma.IsShared; }
    internal static PluginMm.Folio$4 GetFolioNoAlloc(PluginMm.Inode inode, long pgoff) { return PluginMm.PageCacheHooks.GetLocked(inode, pgoff); }
    internal static PluginMm.Folio$4 AllocFolio(in PluginMm.VmaView vma, ulong address) { return vma.Allocator.Alloc(); }
    internal static PluginMm.Errno FilemapAdd(PluginMm.Folio folio, in PluginMm.VmaView vma, ulong address) { return PluginMm.PageCacheHooks.AddLocked(folio, in vma, address); }
    internal static void FilemapRemove(PluginMm.Folio folio, in PluginMm.VmaView vma) { PluginMm.PageCacheHooks.RemoveAndUnlock(folio, in vma); }
    internal static PluginMm.VmFaultResult Fault(ref PluginMm.VmFault vmf) { return PluginMm.PageCacheHooks.Fault(ref vmf); }
}
CS
}

main() { # $1 = registry class, $2 = expected count
  cat <<CS
internal static class Program
{
    private static unsafe int Main()
    {
        var all = $1.All;
        var ops = all[0];
        var allocator = new PluginMm.PageAllocator();
        var inode = new PluginMm.Inode("m", 4 * 4096, 4096, allocator);
        var vma = new PluginMm.VmaView(0x10000, 0x14000, PluginMm.VmFlags.Read | PluginMm.VmFlags.Write | PluginMm.VmFlags.Shared, 0, inode, 12, allocator);
        var folio = ops.UffdOps.AllocFolio(in vma, 0x11000)!;
        bool added = ops.UffdOps.FilemapAdd(folio, in vma, 0x11000) == PluginMm.Errno.None;
        folio.Unlock(); // FilemapAdd leaves it locked for the caller, as shmem_mfill_filemap_add does
        var found = ops.UffdOps.GetFolioNoAlloc(inode, 1);
        bool ok = all.Count == $2 && ops.UffdOps.CanUserfault(in vma, PluginMm.UffdModes.Minor) && added && found == folio;
        System.Console.WriteLine("registry " + all.Count + " types, first " + ops.Name + ": " + (ok ? "table ok" : "WRONG"));
        return ok ? 0 : 1;
    }
}
CS
}

run_cell() { # $1 = cell, $2 = dir, $3 = registry class, $4 = expected count
  if ! build "$2" || crashed "$2"; then result "$1" 1 "build" "$2"; return; fi
  local out; out="$(cd "$2" && timeout 120 dotnet run --no-build 2>&1)"
  result "$1" $? "$(tail -n1 <<<"$out")"
}

# nullable-off
d="$(project nullable-off '<Nullable>disable</Nullable><ImplicitUsings>disable</ImplicitUsings>')"
{ memory_type "namespace Consumer {" Ram ram ""; echo "}"; main Consumer.nullableoff.MemoryTypeRegistry 1; } >"$d/Program.cs"
sed -i 's/^namespace Consumer {$/namespace Consumer {/' "$d/Program.cs"
run_cell nullable-off "$d" Consumer.nullableoff.MemoryTypeRegistry 1

# langversion-8
d="$(project langversion-8 '<LangVersion>8</LangVersion><Nullable>enable</Nullable><ImplicitUsings>disable</ImplicitUsings>')"
{ memory_type "namespace Consumer {" Ram ram "?"; echo "}"; main Consumer.langversion8.MemoryTypeRegistry 1; } >"$d/Program.cs"
run_cell langversion-8 "$d" x 1

# langversion-73: must fail with PMM0015 only
d="$(project langversion-73 '<LangVersion>7.3</LangVersion><ImplicitUsings>disable</ImplicitUsings>')"
{ memory_type "namespace Consumer {" Ram ram ""; echo "}"; } >"$d/Program.cs"
sed -i 's/<OutputType>Exe</<OutputType>Library</' "$d/Consumer.csproj"
if build "$d"; then result langversion-73 1 "built, expected PMM0015" "$d"
elif crashed "$d" || ! grep -q "error PMM0015: Memory type 'Consumer.Ram' needs C# 8.0 or later" "$d/build.log" \
  || grep -E 'error CS[0-9]+' "$d/build.log" | grep -q 'PluginMm.g.cs'; then result langversion-73 1 "no PMM0015, or an error in generated code" "$d"
else result langversion-73 0 "$(grep -m1 -o 'error PMM0015: [^;]*' "$d/build.log")"; fi

# analysis-all
d="$(project analysis-all '<AnalysisMode>All</AnalysisMode><TreatWarningsAsErrors>true</TreatWarningsAsErrors><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings>' Library)"
memory_type "namespace Consumer;" Ram ram "?" >"$d/Ram.cs"
if build "$d" && ! crashed "$d" && ! grep -q 'warning ' "$d/build.log"; then result analysis-all 0 "no warning with AnalysisMode=All"; else result analysis-all 1 "build" "$d"; fi

# names: case-colliding names, global-namespace types, one called MemoryTypeRegistry
d="$(project names '<Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings>')"
memory_type "namespace Consumer;" Shmem lower "?" >"$d/Lower.cs"
memory_type "namespace Consumer;" SHMEM upper "?" >"$d/Upper.cs"
memory_type "" Global global "?" >"$d/Global.cs"
memory_type "" MemoryTypeRegistry registry "?" >"$d/Registry.cs"
main Consumer.names.MemoryTypeRegistry 4 >"$d/Program.cs"
run_cell names "$d" x 4

# types-1000
d="$(project types-1000 '<Nullable>enable</Nullable>')"
for i in $(seq -w 0 999); do memory_type "namespace Consumer.Many {" "Type$i" "type$i" "?"; echo "}"; done >"$d/Types.cs"
main Consumer.types1000.MemoryTypeRegistry 1000 >"$d/Program.cs"
run_cell types-1000 "$d" x 1000

# format-crlf: broken CRLF sources, fixed by dotnet format analyzers through the package's code fixes
d="$(project format-crlf '<Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings>')"
cat >"$d/Broken.cs" <<'CS'
using PluginMm;
using PluginMm.Hmm;

namespace Consumer;

// PMM0001 (GetFolioNoAlloc, Fault missing), PMM0002 (AllocFolio's signature), PMM0009 (FilemapAdd without FilemapRemove)
[MemoryType("disk", Backing = Backing.PageCache, Modes = UffdModes.Missing | UffdModes.Minor)]
public static partial class Disk
{
    public static bool CanUserfault(in VmaView vma, UffdModes modes) => vma.IsShared;

    public static Folio AllocFolio(VmaView vma, int address) => vma.Allocator.Alloc()!;

    public static Errno FilemapAdd(Folio folio, in VmaView vma, ulong address) => PageCacheHooks.AddLocked(folio, in vma, address);
}

// PMM0009 (FilemapAdd without FilemapRemove, which MINOR alone does not require)
[MemoryType("cache", Backing = Backing.PageCache, Modes = UffdModes.Minor)]
public static partial class Cache
{
    public static bool CanUserfault(in VmaView vma, UffdModes modes) => true;

    public static Folio? GetFolioNoAlloc(Inode inode, long pgoff) => PageCacheHooks.GetLocked(inode, pgoff);

    public static Errno FilemapAdd(Folio folio, in VmaView vma, ulong address) => PageCacheHooks.AddLocked(folio, in vma, address);

    public static VmFaultResult Fault(ref VmFault vmf) => PageCacheHooks.Fault(ref vmf);
}

// PMM0003 (MINOR on anonymous memory)
[MemoryType("anon", Backing = Backing.Anonymous, Modes = UffdModes.Missing | UffdModes.Minor)]
public static partial class Anon
{
    public static bool CanUserfault(in VmaView vma, UffdModes modes) => true;

    public static Folio? AllocFolio(in VmaView vma, ulong address) => vma.Allocator.Alloc();
}

// PMM0013 (not partial, nor its container)
public static class Driver
{
    [MmuIntervalNotifierOps("mirror")]
    public static class Mirror
    {
        public static bool Invalidate(MmuIntervalNotifier interval, in MmuNotifierRangeView range, ulong curSeq) { interval.SetSeq(curSeq); return true; }
    }
}
CS
main Consumer.formatcrlf.MemoryTypeRegistry 3 | sed 's/var ops = all\[0\];/var ops = all[2];/' >"$d/Program.cs"
sed -i 's/$/\r/' "$d/Broken.cs" "$d/Program.cs"
if build "$d"; then result format-crlf 1 "the broken project built" "$d"
else
  before="$(grep -oE 'error PMM00[0-9]+' "$d/build.log" | sort -u | tr '\n' ' ')"
  (cd "$d" && dotnet format analyzers Consumer.csproj --diagnostics PMM0001 PMM0002 PMM0003 PMM0009 PMM0013 --severity error --no-restore -v diag >"$d/format.log" 2>&1)
  bare=$(grep -c $'[^\r]$' "$d/Broken.cs" || true)
  if ! build "$d" || crashed "$d"; then cat "$d/format.log"; result format-crlf 1 "not fixed by dotnet format (before: $before)" "$d"
  elif [ "$bare" -ne 0 ]; then result format-crlf 1 "$bare lines without CR after the fix"
  else out="$(cd "$d" && timeout 120 dotnet run --no-build 2>&1)"; result format-crlf $? "fixed $before; $(tail -n1 <<<"$out")"; fi
fi

echo "consumer-matrix: $passed passed, $failed failed ($(( $(date +%s) - start )) s)"
[ "$failed" -eq 0 ]
