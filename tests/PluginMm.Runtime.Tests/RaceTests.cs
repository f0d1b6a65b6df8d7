using PluginMm.Runtime.Tests.Support;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Tests;

/// <summary>
/// Concurrency: faulting tasks are threads that block in handle_userfault. Stale messages may happen, lost wake-ups
/// never; closing the userfaultfd releases every blocked faulter; no folio leaks. Hang guards fail the test with a
/// message instead of hanging the run.
/// </summary>
[TestClass]
public sealed class RaceTests
{
    public static IEnumerable<object[]> ThreeTypes => [["anon"], ["shmem"], ["hugetlb"]];

    private static int PagesFor(string mem) => mem.StartsWith("hugetlb", StringComparison.Ordinal) ? 2 : 32;

    [TestMethod(DisplayName = "race: two tasks fault one page")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void TwoTasksFaultOnePage(string mem)
    {
        var alloc = new PageAllocator();
        using (var env = new UffdTestEnv(mem, nrPages: PagesFor(mem), allocator: alloc))
        {
            env.RegisterDst(UffdModes.Missing);
            var src = Enumerable.Range(0, env.NrPages).Select(env.SrcPage).ToArray();
            using var server = new PageServer(env.Uffd, env.PageSize, p => src[(int)((p - env.Dst) / (ulong)env.PageSize)]);
            var threads = new List<Thread>();
            var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
            for (int k = 0; k < 2; k++)
            {
                threads.Add(env.Mm.CreateTask($"twin{k}").RunChecked(t =>
                {
                    for (int i = 0; i < env.NrPages; i++)
                    {
                        var (r, data) = env.ReadPage(t, env.Dst, i);
                        if (r != AccessResult.Ok || !data.AsSpan().SequenceEqual(src[i]))
                            failures.Enqueue($"{t.Name} page {i}: {r}");
                    }
                }));
            }
            foreach (var th in threads) Threads.JoinOrFail(th, "twin faulter");
            server.Stop();
            Assert.IsTrue(failures.IsEmpty, string.Join("; ", failures));
            Assert.AreEqual(0, server.Errors.Count, string.Join("; ", server.Errors));
            Assert.IsTrue(server.MissingFaults >= env.NrPages, "every page faulted at least once");
            Assert.IsTrue(server.MissingFaults <= 2L * env.NrPages + 2, "at most one message per task and page, plus stale retries");
        }
        Assert.AreEqual(0, alloc.LivePages, "no folio leaked");
    }

    [TestMethod(DisplayName = "race: COPY against a fault (no handler: only the COPY's wake can release the faulter)")]
    [DynamicData(nameof(ThreeTypes))]
    public void CopyAgainstFault(string mem)
    {
        var alloc = new PageAllocator();
        using (var env = new UffdTestEnv(mem, nrPages: PagesFor(mem), allocator: alloc))
        {
            env.RegisterDst(UffdModes.Missing);
            var src = Enumerable.Range(0, env.NrPages).Select(env.SrcPage).ToArray();
            for (int i = 0; i < env.NrPages; i++)
            {
                using var go = new Barrier(2);
                int page = i;
                var th = env.Mm.CreateTask($"faulter{i}").RunChecked(t =>
                {
                    go.SignalAndWait();
                    var (r, data) = env.ReadPage(t, env.Dst, page);
                    Assert.AreEqual(AccessResult.Ok, r);
                    CollectionAssert.AreEqual(src[page], data);
                });
                go.SignalAndWait();
                if ((i & 1) == 1) Thread.Yield();
                var c = env.Uffd.Copy(env.DstPage(page), src[page], UffdCopyMode.None);
                Assert.IsTrue(c.Succeeded, c.ToString());
                Threads.JoinOrFail(th, $"faulter of page {i} (lost wake-up?)");
            }
            Assert.AreEqual(0, env.Uffd.WaitingCount, "every waiter left the queues");
            // Messages of faults resolved before they slept may stay queued: stale, never harmful.
            Assert.IsTrue(env.Uffd.PendingCount <= env.NrPages);
        }
        Assert.AreEqual(0, alloc.LivePages, "no folio leaked");
    }

    [TestMethod(DisplayName = "race: close with many blocked faulters")]
    [DynamicData(nameof(MemConfig.All), typeof(MemConfig), DynamicDataDisplayName = nameof(UffdTestEnv.DisplayName), DynamicDataDisplayNameDeclaringType = typeof(UffdTestEnv))]
    public void CloseWithBlockedFaulters(string mem)
    {
        var alloc = new PageAllocator();
        using (var env = new UffdTestEnv(mem, nrPages: PagesFor(mem), allocator: alloc))
        {
            env.RegisterDst(UffdModes.Missing);
            int tasks = 12;
            var results = new AccessResult[tasks];
            var data = new ulong[tasks];
            var threads = new List<Thread>();
            for (int k = 0; k < tasks; k++)
            {
                int id = k;
                ulong addr = env.DstPage(id % env.NrPages) + (ulong)(id * 8);
                threads.Add(env.Mm.CreateTask($"blocked{k}").RunChecked(t => results[id] = t.ReadUInt64(addr, out data[id])));
            }
            Threads.WaitUntil(() => env.Uffd.WaitingCount == tasks, "all faulters blocked in handle_userfault");
            Assert.AreEqual(tasks, env.Uffd.PendingCount);
            env.Uffd.Dispose();
            foreach (var th in threads) Threads.JoinOrFail(th, "faulter after close");
            // They retried against unregistered memory: zero-fill, no SIGBUS.
            CollectionAssert.AreEqual(Enumerable.Repeat(AccessResult.Ok, tasks).ToArray(), results);
            CollectionAssert.AreEqual(new ulong[tasks], data);
            Assert.IsTrue(env.Mm.Vmas.All(v => v.UffdCtx is null && !v.UffdArmed), "release unregistered every VMA");
        }
        Assert.AreEqual(0, alloc.LivePages, "no folio leaked");
    }

    [TestMethod(DisplayName = "race: close while faults keep arriving")]
    [DynamicData(nameof(ThreeTypes))]
    public void CloseWhileFaulting(string mem)
    {
        var alloc = new PageAllocator();
        using (var env = new UffdTestEnv(mem, nrPages: PagesFor(mem) * 2, allocator: alloc))
        {
            env.RegisterDst(UffdModes.Missing);
            var src = Enumerable.Range(0, env.NrPages).Select(env.SrcPage).ToArray();
            using var server = new PageServer(env.Uffd, env.PageSize, p => src[(int)((p - env.Dst) / (ulong)env.PageSize)]);
            var threads = new List<Thread>();
            int done = 0;
            for (int k = 0; k < 4; k++)
            {
                int seed = k;
                threads.Add(env.Mm.CreateTask($"f{k}").RunChecked(t =>
                {
                    var rnd = new Random(seed);
                    for (int n = 0; n < env.NrPages; n++)
                    {
                        int i = rnd.Next(env.NrPages);
                        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(env.DstPage(i), out var v));
                        Assert.IsTrue(v == 0 || v == BitConverter.ToUInt64(src[i], 0), $"page {i} holds {v:x}");
                        Interlocked.Increment(ref done);
                    }
                }));
            }
            Threads.WaitUntil(() => Volatile.Read(ref done) >= env.NrPages / 2, "some faults served");
            env.Uffd.Dispose();
            foreach (var th in threads) Threads.JoinOrFail(th, "faulter racing close");
            server.Stop();
        }
        Assert.AreEqual(0, alloc.LivePages, "no folio leaked");
    }

    [TestMethod(DisplayName = "race: many tasks, random pages, blocking read handler")]
    [DynamicData(nameof(ThreeTypes))]
    public void ManyTasksBlockingHandler(string mem)
    {
        var alloc = new PageAllocator();
        using (var env = new UffdTestEnv(mem, nrPages: PagesFor(mem) * 2, allocator: alloc, uffdFlags: Uapi.UFFD_USER_MODE_ONLY))
        {
            Assert.IsFalse(env.Uffd.NonBlocking);
            env.RegisterDst(UffdModes.Missing);
            var src = Enumerable.Range(0, env.NrPages).Select(env.SrcPage).ToArray();
            var server = new PageServer(env.Uffd, env.PageSize, p => src[(int)((p - env.Dst) / (ulong)env.PageSize)]);
            var threads = new List<Thread>();
            for (int k = 0; k < 6; k++)
            {
                int seed = 100 + k;
                threads.Add(env.Mm.CreateTask($"r{k}").RunChecked(t =>
                {
                    var rnd = new Random(seed);
                    for (int n = 0; n < env.NrPages * 2; n++)
                    {
                        int i = rnd.Next(env.NrPages);
                        Assert.AreEqual(AccessResult.Ok, t.ReadUInt64(env.DstPage(i) + 8, out var v));
                        Assert.AreEqual(BitConverter.ToUInt64(src[i], 8), v);
                    }
                }));
            }
            foreach (var th in threads) Threads.JoinOrFail(th, "reader");
            Assert.AreEqual(0, server.Errors.Count, string.Join("; ", server.Errors));
            env.Uffd.Dispose(); // ends the blocking read with EBADF
            server.Stop();
        }
        Assert.AreEqual(0, alloc.LivePages, "no folio leaked");
    }
}
