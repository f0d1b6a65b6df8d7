namespace PluginMm.Runtime;

public sealed partial class Mm
{
    /// <summary>
    /// Models <c>exit_mmap</c> (mm/mmap.c): the process exits; every VMA is unmapped, every folio reference dropped, and
    /// later userfaultfd ioctls on this mm fail (<c>mmget_not_zero</c>: ESRCH / ENOMEM).
    /// </summary>
    public void Exit()
    {
        IMmuNotifier[] notifiers;
        MmapLock.EnterWriteLock();
        try
        {
            if (_exited)
                return;
            _exited = true;
            notifiers = Volatile.Read(ref _notifiers);
            foreach (var n in notifiers) n.Release(this);
            foreach (var v in VmaSet.ToArray())
            {
                ZapRange(v, v.Start, v.End, dropMarkers: true);
                RemoveVma(v);
            }
            PageTable.Clear();
        }
        finally { MmapLock.ExitWriteLock(); }
    }
}
