namespace PluginMm.Userfaultfd;

/// <summary>
/// The outcome of a userfaultfd call, as the kernel reports it: the errno the <c>ioctl</c> (or <c>read</c>) failed with
/// (<see cref="Errno.None"/> on success), and the signed result field the kernel wrote back (<c>copy</c>,
/// <c>zeropage</c>, <c>mapped</c>, <c>updated</c>, <c>move</c>: bytes done, or <c>-errno</c>), or the message count
/// for a read. A field of <c>-EAGAIN</c> is an error code, never a byte count.
/// </summary>
public readonly record struct UffdioResult(Errno Errno, long Field)
{
    /// <summary>Success with no result field.</summary>
    public static UffdioResult Ok => default;

    /// <summary>Failure with no result field written.</summary>
    public static UffdioResult Fail(Errno errno) => new(errno, 0);

    /// <summary>The call returned 0.</summary>
    public bool Succeeded => Errno == Errno.None;

    /// <summary>Bytes done as written in the result field (0 when the field holds an error).</summary>
    public long BytesDone => Field > 0 ? Field : 0;

    /// <summary>The error the result field holds (<c>-field</c>), or <see cref="Errno.None"/> when it holds a byte count.</summary>
    public Errno FieldErrno => Field < 0 ? (Errno)(int)(-Field) : Errno.None;

    /// <inheritdoc/>
    public override string ToString() => Errno == Errno.None ? $"ok field={Field}" : $"{Errno} field={Field}";
}

/// <summary>Result of <see cref="IUserfaultfd.Poll"/>.</summary>
public enum PollResult
{
    /// <summary>Nothing readable before the timeout.</summary>
    Timeout = 0,
    /// <summary><c>EPOLLIN</c>: a message can be read.</summary>
    Readable = 1,
    /// <summary><c>EPOLLERR</c>: polling is not meaningful (uninitialised, or a blocking fd).</summary>
    Error = 2,
    /// <summary><c>EPOLLHUP</c>: the userfaultfd was released.</summary>
    HangUp = 3,
}

/// <summary>
/// The handler-side API: what a userfaultfd handler (a page server) is written against. Implemented by the model
/// (PluginMm.Runtime) and by the real Linux userfaultfd (the host target), so the same handler runs on both.
/// Every method returns what the kernel would: an errno and, for the range ioctls, the signed result field.
/// </summary>
public interface IUserfaultfd : IDisposable
{
    /// <summary>Page size of the memory this userfaultfd serves (<c>sysconf(_SC_PAGESIZE)</c>).</summary>
    int PageSize { get; }

    /// <summary>Whether the fd is non-blocking (<c>O_NONBLOCK</c>).</summary>
    bool NonBlocking { get; }

    /// <summary>Features enabled on this fd by <see cref="Api"/>.</summary>
    UffdFeatures Features { get; }

    /// <summary>
    /// <c>UFFDIO_API</c>: enables <paramref name="features"/>; on success <paramref name="available"/> holds every feature the
    /// kernel supports and <paramref name="ioctls"/> the API ioctls. On error both are zero (the kernel zeroes the struct).
    /// </summary>
    UffdioResult Api(ulong api, UffdFeatures features, out UffdFeatures available, out UffdIoctls ioctls);

    /// <summary>
    /// <c>read(2)</c> of whole messages into <paramref name="buffer"/>. Blocks for the first message unless the fd is
    /// non-blocking (then EAGAIN when empty). <c>Field</c> is the number of messages read.
    /// </summary>
    UffdioResult Read(Span<UffdMsg> buffer);

    /// <summary><c>poll(2)</c> for <c>POLLIN</c> with a timeout in milliseconds (-1 = forever).</summary>
    PollResult Poll(int timeoutMs);

    /// <summary><c>UFFDIO_REGISTER</c>; <paramref name="ioctls"/> is the returned range-ioctl mask.</summary>
    UffdioResult Register(ulong start, ulong len, UffdModes mode, out UffdIoctls ioctls);

    /// <summary><c>UFFDIO_UNREGISTER</c>.</summary>
    UffdioResult Unregister(ulong start, ulong len);

    /// <summary><c>UFFDIO_WAKE</c>.</summary>
    UffdioResult Wake(ulong start, ulong len);

    /// <summary><c>UFFDIO_COPY</c> from <paramref name="src"/> (a buffer in the handler's memory) to <paramref name="dst"/>; <c>Field</c> is <c>copy</c>.</summary>
    UffdioResult Copy(ulong dst, ReadOnlySpan<byte> src, UffdCopyMode mode);

    /// <summary><c>UFFDIO_ZEROPAGE</c>; <c>Field</c> is <c>zeropage</c>.</summary>
    UffdioResult ZeroPage(ulong start, ulong len, UffdZeroPageMode mode);

    /// <summary><c>UFFDIO_CONTINUE</c>; <c>Field</c> is <c>mapped</c>.</summary>
    UffdioResult Continue(ulong start, ulong len, UffdContinueMode mode);

    /// <summary><c>UFFDIO_WRITEPROTECT</c>.</summary>
    UffdioResult WriteProtect(ulong start, ulong len, UffdWriteProtectMode mode);

    /// <summary><c>UFFDIO_POISON</c>; <c>Field</c> is <c>updated</c>.</summary>
    UffdioResult Poison(ulong start, ulong len, UffdPoisonMode mode);

    /// <summary><c>UFFDIO_MOVE</c>; <c>Field</c> is <c>move</c>.</summary>
    UffdioResult Move(ulong dst, ulong src, ulong len, UffdMoveMode mode);
}
