using System.Runtime.InteropServices;

namespace PluginMm.Bench;

/// <summary>
/// Process CPU time (user + system, every thread) from <c>getrusage(RUSAGE_SELF)</c>, microsecond resolution. On a
/// shared machine a preempted thread accrues no CPU time, so CPU time per page is far steadier than wall time per page;
/// the round-trip tables show both.
/// </summary>
public static partial class CpuTime
{
    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UtimeSec, UtimeUsec, StimeSec, StimeUsec;
        public long MaxRss, IxRss, IdRss, IsRss, MinFlt, MajFlt, NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NVcsw, NIvcsw;
    }

    [LibraryImport("libc", EntryPoint = "getrusage")]
    private static partial int GetRUsage(int who, out RUsage usage);

    /// <summary>CPU time of this process so far, in nanoseconds (0 if getrusage fails).</summary>
    public static double ProcessNs()
    {
        if (GetRUsage(0, out var u) != 0) return 0;
        return (u.UtimeSec + u.StimeSec) * 1e9 + (u.UtimeUsec + u.StimeUsec) * 1e3;
    }
}
