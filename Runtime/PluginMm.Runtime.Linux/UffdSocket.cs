using System.Net.Sockets;
using PluginMm.Runtime.Linux.Interop;

namespace PluginMm.Runtime.Linux;

/// <summary>The credentials of a Unix socket's peer (<c>SO_PEERCRED</c>: as they were at <c>connect(2)</c>).</summary>
/// <param name="Pid">Process id (what a handler kills on a fatal error, as Firecracker recommends).</param>
/// <param name="Uid">User id.</param>
/// <param name="Gid">Group id.</param>
public readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid);

/// <summary>One message received by <see cref="UffdSocket.Receive"/>.</summary>
/// <param name="Errno">The error of <c>recvmsg(2)</c> (<see cref="Errno.None"/> on success).</param>
/// <param name="Bytes">Payload bytes written to the caller's buffer (0 with no error: the peer closed).</param>
/// <param name="Uffd">The userfaultfd passed with SCM_RIGHTS (owned), or null if the message carried no descriptor.</param>
/// <param name="Truncated">Whether payload or control data was cut (<c>MSG_TRUNC</c>/<c>MSG_CTRUNC</c>).</param>
public readonly record struct UffdSocketMessage(Errno Errno, int Bytes, HostUserfaultfd? Uffd, bool Truncated);

/// <summary>
/// Receiving a userfaultfd from another process over a Unix stream socket — Firecracker's snapshot-restore handshake
/// (src/vmm/src/persist.rs send_uffd_handshake: one <c>sendmsg</c> with the JSON region list as payload and the uffd
/// as SCM_RIGHTS).
/// </summary>
public static unsafe class UffdSocket
{
    /// <summary><c>getsockopt(SO_PEERCRED)</c> on a connected Unix socket.</summary>
    public static Errno GetPeerCredentials(Socket socket, out PeerCredentials peer)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var c = default(SocketCalls.UCred);
        uint len = (uint)sizeof(SocketCalls.UCred);
        int rc = SocketCalls.GetSockOpt((int)socket.Handle, SocketCalls.SOL_SOCKET, SocketCalls.SO_PEERCRED, &c, &len);
        peer = new PeerCredentials(c.Pid, c.Uid, c.Gid);
        return rc < 0 ? LibC.LastErrno : Errno.None;
    }

    /// <summary>
    /// One <c>recvmsg(2)</c> (blocking, <c>MSG_CMSG_CLOEXEC</c>) into <paramref name="payload"/>; a descriptor passed
    /// with SCM_RIGHTS is adopted as an owning <see cref="HostUserfaultfd"/> (refused and closed if it is not a
    /// userfaultfd: then <c>Errno</c> is ENOTTY). Extra descriptors in the same message are closed.
    /// </summary>
    public static UffdSocketMessage Receive(Socket socket, Span<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(socket);
        const int MaxFds = 4;
        byte* control = stackalloc byte[SocketCalls.CmsgHdrSize + MaxFds * sizeof(int)];
        fixed (byte* p = payload)
        {
            var iov = new SocketCalls.IoVec { Base = p, Len = (nuint)payload.Length };
            var msg = new SocketCalls.MsgHdr
            {
                Iov = &iov,
                IovLen = 1,
                Control = control,
                ControlLen = (nuint)(SocketCalls.CmsgHdrSize + MaxFds * sizeof(int)),
            };
            nint n;
            do
                n = SocketCalls.RecvMsg((int)socket.Handle, &msg, SocketCalls.MSG_CMSG_CLOEXEC);
            while (n < 0 && LibC.LastErrno == Errno.EINTR);
            if (n < 0)
                return new UffdSocketMessage(LibC.LastErrno, 0, null, false);
            bool truncated = (msg.Flags & (0x20 /* MSG_TRUNC */ | 0x08 /* MSG_CTRUNC */)) != 0;
            HostUserfaultfd? uffd = null;
            var err = Errno.None;
            if (msg.ControlLen >= (nuint)SocketCalls.CmsgHdrSize)
            {
                ulong cmsgLen = *(ulong*)control;
                int level = *(int*)(control + 8), type = *(int*)(control + 12);
                if (level == SocketCalls.SOL_SOCKET && type == SocketCalls.SCM_RIGHTS && cmsgLen >= (ulong)SocketCalls.CmsgHdrSize)
                {
                    int count = (int)((Math.Min(cmsgLen, (ulong)msg.ControlLen) - (ulong)SocketCalls.CmsgHdrSize) / sizeof(int));
                    int* fds = (int*)(control + SocketCalls.CmsgHdrSize);
                    for (int i = 0; i < count; i++)
                    {
                        if (uffd is null && err == Errno.None)
                        {
                            err = HostUserfaultfd.Adopt(fds[i], ownsDescriptor: true, out uffd);
                            if (err != Errno.None)
                                LibC.Close(fds[i]);
                        }
                        else
                            LibC.Close(fds[i]);
                    }
                }
            }
            return new UffdSocketMessage(err, (int)n, uffd, truncated);
        }
    }
}
