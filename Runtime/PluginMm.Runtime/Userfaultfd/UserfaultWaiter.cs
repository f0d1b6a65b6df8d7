using PluginMm.Userfaultfd;

namespace PluginMm.Runtime;

/// <summary>
/// A faulting task's entry on a userfaultfd wait queue (<c>struct userfaultfd_wait_queue</c>, on the kernel stack):
/// the message, the wake-up event and the links of the intrusive queue. One per task, reused, so blocking allocates nothing.
/// </summary>
internal sealed class UserfaultWaiter
{
    public UserfaultWaiter(ModelTask task) => Task = task;

    public ModelTask Task { get; }

    /// <summary>Set by a wake (<c>userfaultfd_wake_function</c>); the faulter sleeps on it.</summary>
    public ManualResetEventSlim Event { get; } = new(false);

    /// <summary>The message (<c>uwq.msg</c>).</summary>
    public UffdMsg Msg;

    /// <summary>The address used for wake matching (<c>msg.arg.pagefault.address</c>).</summary>
    public ulong Address;

    public UserfaultWaiter? Prev, Next;
    public WaitQueue? Queue;
}

/// <summary>An intrusive FIFO of <see cref="UserfaultWaiter"/>s (<c>wait_queue_head_t</c>); the owner's lock protects it.</summary>
internal sealed class WaitQueue
{
    public UserfaultWaiter? Head, Tail;
    public int Count;

    public void Add(UserfaultWaiter w)
    {
        w.Queue = this;
        w.Next = null;
        w.Prev = Tail;
        if (Tail is null) Head = w; else Tail.Next = w;
        Tail = w;
        Count++;
    }

    public void Remove(UserfaultWaiter w)
    {
        if (w.Prev is null) Head = w.Next; else w.Prev.Next = w.Next;
        if (w.Next is null) Tail = w.Prev; else w.Next.Prev = w.Prev;
        w.Prev = w.Next = null;
        w.Queue = null;
        Count--;
    }
}
