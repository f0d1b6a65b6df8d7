using System.Net.Sockets;
using System.Runtime.InteropServices;
using PluginMm.Runtime.Linux.Interop;
using PluginMm.Userfaultfd;

namespace PluginMm.Runtime.Linux.Tests;

/// <summary>Issue 18 part 1: a userfaultfd that arrives from elsewhere — adopted from a number (owning or not),
/// received over a Unix socket with SCM_RIGHTS and SO_PEERCRED (Firecracker's handshake), a FORK message's ufd — and
/// a read that is not a whole number of messages.</summary>
[TestClass]
public sealed unsafe partial class AdoptTests
{
    [TestMethod(DisplayName = "adopt without owning: features come from fdinfo, Dispose leaves the descriptor open")]
    public void AdoptNonOwning()
    {
        using var uffd = HostTestSupport.OpenApi(UffdFeatures.EventRemove | UffdFeatures.EventFork);
        Assert.AreEqual(Errno.None, HostUserfaultfd.Adopt(uffd.Fd, ownsDescriptor: false, out var adopted));
        Assert.IsNotNull(adopted);
        Assert.IsFalse(adopted.OwnsDescriptor);
        Assert.IsTrue(adopted.NonBlocking);
        Assert.AreEqual(UffdFeatures.EventRemove | UffdFeatures.EventFork,
            adopted.Features & (UffdFeatures.EventRemove | UffdFeatures.EventFork), $"fdinfo features {adopted.Features}");
        adopted.Dispose();
        Assert.AreEqual(Errno.EBADF, adopted.Wake(0, 4096).Errno, "calls after Dispose return EBADF");
        Assert.IsTrue(LibC.Fcntl(uffd.Fd, LibC.F_GETFL, 0) >= 0, "a non-owning adopter must not close the descriptor");
        using var region = HostMemory.MapAnonymous((nuint)uffd.PageSize);
        Assert.IsTrue(uffd.Register(region.Start, (ulong)uffd.PageSize, UffdModes.Missing, out _).Succeeded);
    }

    [TestMethod(DisplayName = "adopt refuses a descriptor that is not a userfaultfd (ENOTTY) and a closed one (EBADF)")]
    public void AdoptRefusesOthers()
    {
        int efd = LibC.EventFd(0, LibC.EFD_CLOEXEC);
        Assert.IsTrue(efd >= 0);
        try
        {
            Assert.AreEqual(Errno.ENOTTY, HostUserfaultfd.Adopt(efd, ownsDescriptor: false, out var none));
            Assert.IsNull(none);
        }
        finally { LibC.Close(efd); }
        Assert.AreEqual(Errno.EBADF, HostUserfaultfd.Adopt(efd, ownsDescriptor: true, out _));
        Assert.AreEqual(Errno.EBADF, HostUserfaultfd.Adopt(-1, ownsDescriptor: true, out _));
    }

    [TestMethod(DisplayName = "a read of a non-multiple of sizeof(uffd_msg) is reported (EIO + the stray bytes), not truncated")]
    public void ShortReadIsReported()
    {
        int efd = LibC.EventFd(5, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        Assert.IsTrue(efd >= 0);
        Assert.AreEqual(Errno.None, HostUserfaultfd.Adopt(efd, ownsDescriptor: true, out var notUffd, verify: false));
        Assert.IsNotNull(notUffd);
        using (notUffd)
        {
            Span<UffdMsg> buf = stackalloc UffdMsg[2];
            var r = notUffd.Read(buf); // an eventfd read returns 8 bytes
            Assert.AreEqual(Errno.EIO, r.Errno, r.ToString());
            Assert.AreEqual(0, r.Field, "no whole message");
            Assert.AreEqual(8, notUffd.ShortReadBytes);
        }
    }

    [TestMethod(DisplayName = "FromForkMessage refuses a message that is not FORK")]
    public void ForkMessageOnlyFromFork()
    {
        Assert.AreEqual(Errno.EINVAL, HostUserfaultfd.FromForkMessage(UffdMsg.Remove(UffdEvent.Remove, 0, 4096), out var u));
        Assert.IsNull(u);
    }

    [TestMethod(DisplayName = "Firecracker handshake: uffd + JSON over a Unix socket (SCM_RIGHTS), SO_PEERCRED, and the received uffd serves a fault")]
    public void ReceiveOverUnixSocket()
    {
        using var sender = HostTestSupport.OpenApi(UffdFeatures.EventRemove);
        int page = sender.PageSize;
        using var region = HostMemory.MapAnonymous((nuint)(4 * page));
        Assert.IsTrue(sender.Register(region.Start, (ulong)(4 * page), UffdModes.Missing, out _).Succeeded);

        string path = Path.Combine(Path.GetTempPath(), $"pluginmm-adopt-{Environment.ProcessId}-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        try
        {
            using var vmm = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            vmm.Connect(new UnixDomainSocketEndPoint(path));
            using var handler = listener.Accept();
            string json = $"[{{\"base_host_virt_addr\":{region.Start},\"size\":{4 * page},\"offset\":0,\"page_size\":{page},\"page_size_kib\":{page}}}]";
            Assert.AreEqual(0, SendWithFd(vmm, System.Text.Encoding.UTF8.GetBytes(json), sender.Fd), "sendmsg");

            Assert.AreEqual(Errno.None, UffdSocket.GetPeerCredentials(handler, out var peer));
            Assert.AreEqual(Environment.ProcessId, peer.Pid);
            var buf = new byte[4096];
            var m = UffdSocket.Receive(handler, buf);
            Assert.AreEqual(Errno.None, m.Errno);
            Assert.IsFalse(m.Truncated);
            Assert.AreEqual(json, System.Text.Encoding.UTF8.GetString(buf, 0, m.Bytes));
            Assert.IsNotNull(m.Uffd);
            using var received = m.Uffd;
            Assert.AreNotEqual(sender.Fd, received.Fd, "SCM_RIGHTS installs a new descriptor");
            Assert.IsTrue(received.OwnsDescriptor);
            Assert.IsTrue(received.NonBlocking, "O_NONBLOCK is a property of the shared open file description");
            Assert.IsTrue((received.Features & UffdFeatures.EventRemove) != 0, $"features {received.Features}");

            var src = new byte[page];
            src.AsSpan().Fill(0x5a);
            var guest = FaultingThread.Start("guest", () => Assert.AreEqual(0x5a, region.Span(0, 1)[0]));
            var msg = HostTestSupport.ReadOne(received);
            Assert.AreEqual(UffdEvent.Pagefault, msg.Event);
            Assert.AreEqual(region.Start, msg.PagefaultAddress & ~(ulong)(page - 1));
            var c = received.Copy(region.Start, src, UffdCopyMode.None);
            Assert.IsTrue(c.Succeeded, c.ToString());
            HostTestSupport.JoinOrFail(guest, received, "fault served through the received uffd");
        }
        finally { File.Delete(path); }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec { public void* Base; public nuint Len; }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name; public uint NameLen; public IoVec* Iov; public nuint IovLen;
        public void* Control; public nuint ControlLen; public int Flags;
    }

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    private static partial nint SendMsg(int fd, MsgHdr* msg, int flags);

    // What vmm_sys_util's ScmSocket::send_with_fd does: one sendmsg, payload + one SCM_RIGHTS descriptor.
    private static int SendWithFd(Socket s, byte[] payload, int fd)
    {
        byte* control = stackalloc byte[24];
        new Span<byte>(control, 24).Clear();
        *(ulong*)control = 20; // CMSG_LEN(sizeof(int))
        *(int*)(control + 8) = 1; // SOL_SOCKET
        *(int*)(control + 12) = 1; // SCM_RIGHTS
        *(int*)(control + 16) = fd;
        fixed (byte* p = payload)
        {
            var iov = new IoVec { Base = p, Len = (nuint)payload.Length };
            var msg = new MsgHdr { Iov = &iov, IovLen = 1, Control = control, ControlLen = 24 };
            return SendMsg((int)s.Handle, &msg, 0) == payload.Length ? 0 : Marshal.GetLastPInvokeError();
        }
    }
}
