using System.Buffers.Binary;
using HmmMirror;
using PluginMm.Runtime;
using PluginMm.Hmm;

namespace PluginMm.Hmm.Tests;

/// <summary>
/// What hmm-tests.c's fixtures and helpers give a test: a process (mm + task), dmirror devices, buffers of
/// <see cref="Npages"/> pages (HMM_BUFFER_SIZE = 4 MiB) and the int-array initialisation the selftests use. The fixture
/// variant picks the devices' memory: hmm_device_private / hmm2_device_private (minors 0 and 1) or
/// hmm_device_coherent / hmm2_device_coherent (minors 2 and 3).
/// </summary>
internal sealed class HmmFixture : IDisposable
{
    /// <summary>HMM_BUFFER_SIZE / 4 KiB.</summary>
    public const int Npages = 1024;
    public const int PageSize = Folio.BasePageSize;
    public const ulong Size = (ulong)Npages * PageSize;

    private readonly List<Dmirror> _open = new();

    public HmmFixture(DmirrorFaultPath path = DmirrorFaultPath.Mainline)
        : this(MemoryDeviceType.Private, path)
    {
    }

    public HmmFixture(MemoryDeviceType variant, DmirrorFaultPath path = DmirrorFaultPath.Mainline)
    {
        Variant = variant;
        Kernel = new ModelKernel(PluginMm.Backends.MemoryTypeRegistry.All);
        Mm = Kernel.CreateMm();
        Task = Mm.CreateTask("hmm-tests");
        int first = variant == MemoryDeviceType.Private ? 0 : 2;
        Device0 = new DmirrorDevice(first, path, memoryType: variant);
        Device1 = new DmirrorDevice(first + 1, path, memoryType: variant);
        PrivateDevice0 = variant == MemoryDeviceType.Private ? Device0 : new DmirrorDevice(0, path);
        Fd = Open(Device0, Mm);
    }

    /// <summary>The fixture variant's memory type (<c>hmm_is_coherent_type(variant->device_number)</c> when Coherent).</summary>
    public MemoryDeviceType Variant { get; }

    public bool IsCoherent => Variant == MemoryDeviceType.Coherent;

    /// <summary>/dev/hmm_dmirror0, which a forked child opens (<c>hmm_open(0)</c>) whatever the variant.</summary>
    public DmirrorDevice PrivateDevice0 { get; }

    public ModelKernel Kernel { get; }
    public Mm Mm { get; }
    public ModelTask Task { get; }
    public DmirrorDevice Device0 { get; }
    public DmirrorDevice Device1 { get; }

    /// <summary>self->fd (hmm_open(0)).</summary>
    public Dmirror Fd { get; }

    public Dmirror Open(DmirrorDevice device, Mm mm)
    {
        Assert.AreEqual(Errno.None, device.Open(mm, out var d));
        _open.Add(d!);
        return d!;
    }

    public ulong MmapAnon(ulong size, Prot prot, MapFlags flags = MapFlags.Private)
    {
        Assert.AreEqual(Errno.None, Mm.Mmap(0, size, prot, flags | MapFlags.Anonymous, null, 0, out ulong addr));
        return addr;
    }

    /// <summary>hmm_dmirror_cmd: the ioctl with the buffer's mirror as ptr.</summary>
    public static Errno Cmd(Dmirror fd, HmmDmirrorCommand command, ulong addr, int npages, byte[] mirror, ModelTask task, out HmmDmirrorCmd cmd)
    {
        cmd = new HmmDmirrorCmd { Addr = addr, NPages = (ulong)npages };
        return fd.Ioctl(command, ref cmd, mirror, task);
    }

    public static byte[] Ints(int count, Func<int, int> value)
    {
        var b = new byte[count * 4];
        for (int i = 0; i < count; i++)
            BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(i * 4), value(i));
        return b;
    }

    public static int IntAt(byte[] b, int i) => BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(i * 4));

    /// <summary>The CPU's view: reads <paramref name="len"/> bytes at <paramref name="addr"/> (asserts the access succeeds).</summary>
    public static byte[] CpuRead(ModelTask task, ulong addr, ulong len)
    {
        var b = new byte[len];
        Assert.AreEqual(AccessResult.Ok, task.Read(addr, b));
        return b;
    }

    public static void CpuWrite(ModelTask task, ulong addr, byte[] data) => Assert.AreEqual(AccessResult.Ok, task.Write(addr, data));

    /// <summary>Asserts <paramref name="actual"/> holds the ints <paramref name="expected"/>(i), naming the first bad index.</summary>
    public static void AssertInts(byte[] actual, int count, Func<int, int> expected, string what)
    {
        for (int i = 0; i < count; i++)
        {
            int v = IntAt(actual, i);
            if (v != expected(i))
                Assert.Fail($"{what}: int {i} is {v}, expected {expected(i)}");
        }
    }

    public void Dispose()
    {
        foreach (var d in _open)
            d.Dispose();
        if (!Mm.Exited)
            Mm.Exit();
    }
}
