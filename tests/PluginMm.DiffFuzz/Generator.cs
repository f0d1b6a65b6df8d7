using PluginMm.Userfaultfd;

using PluginMm.Conformance;

namespace PluginMm.DiffFuzz;

/// <summary>Turns a seed into a case: a memory type, an area and its placement, and a random operation sequence.</summary>
public static class Generator
{
    private const ulong Pmd = Layout.Pmd;

    /// <summary>The case for <paramref name="seed"/> over <paramref name="types"/>.</summary>
    public static FuzzCase Generate(ulong seed, IReadOnlyList<MemType> types)
    {
        var g = new Gen(seed, types);
        return g.Case();
    }

    /// <summary>The seed of case number <paramref name="index"/> of a run seeded <paramref name="runSeed"/> (splitmix64).</summary>
    public static ulong CaseSeed(ulong runSeed, long index)
    {
        ulong z = runSeed + 0x9E3779B97F4A7C15UL * (ulong)(index + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (z ^ (z >> 31)) | 1;
    }

    private sealed class Gen
    {
        private readonly Random _r;
        private readonly MemType _type;
        private readonly int _n;
        private readonly ulong _p;
        private readonly ulong _seed;
        private bool _closed;

        public Gen(ulong seed, IReadOnlyList<MemType> types)
        {
            _seed = seed;
            _r = new Random((int)(seed ^ (seed >> 32)));
            _type = types[_r.Next(types.Count)];
            _p = _type.IsHuge() ? Pmd : 4096;
            _n = _type.IsHuge() ? _r.Next(1, 4) : _r.Next(2, 20);
        }

        private bool Chance(int percent) => _r.Next(100) < percent;

        private static string H(ulong v) => Op.Hex(v);

        private static string At(char region, long off) => off >= 0 ? $"{region}+{H((ulong)off)}" : $"{region}-{H((ulong)-off)}";

        public FuzzCase Case()
        {
            ulong placement = 0;
            if (!_type.IsHuge())
            {
                int k = _r.Next(100);
                placement = k < 40 ? 0 : k < 80 ? Pmd - 4096UL * (ulong)_r.Next(1, _n) : 4096UL * (ulong)_r.Next(0, 512);
            }
            var ops = new List<Op> { Api() };
            if (Chance(8))
                ops.Add(Api());
            if (Chance(85))
                ops.Add(new Op("register", ("start", "A+0x0"), ("len", H((ulong)_n * _p)), ("mode", H(ValidModes()))));
            int count = _r.Next(4, 28);
            for (int i = 0; i < count; i++)
            {
                var op = Next();
                ops.Add(op);
                if (op.Kind == "open" && Chance(85))
                    ops.Add(Api());
            }
            return new FuzzCase(_type, _n, placement, ops, _seed);
        }

        private ulong ValidModes()
        {
            ulong m = 0;
            while (m == 0)
                m = (ulong)_r.Next(1, 8) & (ulong)(Chance(60) ? 1 : 7);
            return m;
        }

        private static readonly UffdFeatures[] Known =
        [
            UffdFeatures.PagefaultFlagWp, UffdFeatures.EventRemap, UffdFeatures.EventRemove, UffdFeatures.MissingHugetlbfs,
            UffdFeatures.MissingShmem, UffdFeatures.EventUnmap, UffdFeatures.SigBus, UffdFeatures.ThreadId,
            UffdFeatures.MinorHugetlbfs, UffdFeatures.MinorShmem, UffdFeatures.ExactAddress, UffdFeatures.WpHugetlbfsShmem,
            UffdFeatures.WpUnpopulated, UffdFeatures.Poison, UffdFeatures.WpAsync, UffdFeatures.Move,
        ];

        private Op Api()
        {
            ulong f = 0;
            int pick = _r.Next(100);
            if (pick < 25)
                f = 0;
            else
            {
                foreach (var k in Known)
                {
                    // SIGBUS and WP_ASYNC change every fault: keep them rarer.
                    int chance = k is UffdFeatures.SigBus or UffdFeatures.WpAsync ? 8 : 45;
                    if (Chance(chance))
                        f |= (ulong)k;
                }
            }
            ulong api = Uapi.UFFD_API;
            if (Chance(6))
                api = Chance(50) ? 0UL : 0xABUL;
            if (Chance(6))
                f |= 1UL << _r.Next(17, 64);
            if (Chance(3))
                f |= (ulong)UffdFeatures.EventFork;
            return new Op("api", ("api", H(api)), ("features", H(f)));
        }

        /// <summary>A range: aligned inside (most), unaligned start or length, empty, wrapping, below mmap_min_addr, partly outside.</summary>
        private (string Start, ulong Len) Range()
        {
            int i = _r.Next(_n), k = _r.Next(1, _n - i + 1);
            long at = (long)((ulong)i * _p);
            ulong len = (ulong)k * _p;
            int kind = _r.Next(100);
            if (kind < 58)
                return (At('A', at), len);
            if (kind < 64)
                return (At('A', at + (_type.IsHuge() ? 4096L * _r.Next(1, 512) : Chance(50) ? 1 : 0x800)), len);
            if (kind < 70)
                return (At('A', at), _type.IsHuge() && Chance(70) ? len - 4096UL * (ulong)_r.Next(1, 512) : len - 0x800);
            if (kind < 74)
                return (At('A', at), 0);
            if (kind < 78)
                return (At('A', at), 0UL - 0x1000UL * (ulong)_r.Next(1, 4));
            if (kind < 83)
                return (H(Chance(50) ? 0UL : 0x1000UL * (ulong)_r.Next(1, 16)), _p);
            if (kind < 93)
                return Chance(50) ? (At('A', -(long)_p), len + _p) : (At('A', at), (ulong)(_n - i + 1) * _p);
            return (H(0x7ffffffff000UL), 0x2000);
        }

        private ulong Mode(ulong valid)
        {
            ulong m = (ulong)_r.Next(0, (int)valid + 1) & valid;
            if (Chance(5))
                m |= 1UL << _r.Next(2, 63);
            return m;
        }

        private Op Next()
        {
            bool file = _type.HasPageCache();
            int w = _r.Next(file ? 128 : 116);
            if (w < 9) { var (s, l) = Range(); return new Op("register", ("start", s), ("len", H(l)), ("mode", H(Chance(90) ? ValidModes() : Mode(0xf)))); }
            if (w < 14) { var (s, l) = Range(); return new Op("unregister", ("start", s), ("len", H(l))); }
            if (w < 24) return Copy();
            if (w < 28) { var (s, l) = Range(); return new Op("zeropage", ("start", s), ("len", H(l)), ("mode", H(Mode(1)))); }
            if (w < 32) { var (s, l) = Range(); return new Op("continue", ("start", s), ("len", H(l)), ("mode", H(Mode(3)))); }
            if (w < 40) { var (s, l) = Range(); return new Op("wp", ("start", s), ("len", H(l)), ("mode", H(Mode(3)))); }
            if (w < 43) { var (s, l) = Range(); return new Op("poison", ("start", s), ("len", H(l)), ("mode", H(Mode(1)))); }
            if (w < 47) return Move();
            if (w < 50) { var (s, l) = Range(); return new Op("wake", ("start", s), ("len", H(l))); }
            if (w < 59) return new Op("read", ("max", _r.Next(1, 5).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            if (w < 75) return Access('A');
            if (w < 79) return new Op("resolve");
            if (w < 85) { var (s, l) = Range(); int[] adv = [4, 4, 9, 10, 11]; return new Op("madvise", ("start", s), ("len", H(l)), ("advice", adv[_r.Next(adv.Length)].ToString(System.Globalization.CultureInfo.InvariantCulture))); }
            if (w < 88) { var (s, l) = Range(); int[] prot = [0, 1, 3, 3]; return new Op("mprotect", ("start", s), ("len", H(l)), ("prot", prot[_r.Next(prot.Length)].ToString(System.Globalization.CultureInfo.InvariantCulture))); }
            if (w < 90) { var (s, l) = Range(); return new Op("munmap", ("start", s), ("len", H(l))); }
            if (w < 93) return Mremap();
            if (w < 95) return _closed ? Open() : Close();
            if (w < 116) return Access('A');
            if (w < 122) return Access('L');
            int pi = _r.Next(_n), pk = _r.Next(1, _n - pi + 1);
            return new Op("punch", ("off", H((ulong)pi * _p + (Chance(15) ? 4096UL : 0))), ("len", H((ulong)pk * _p)));
        }

        private Op Close()
        {
            _closed = true;
            return new Op("close");
        }

        private Op Open()
        {
            _closed = false;
            return new Op("open");
        }

        private Op Access(char region)
        {
            int i = _r.Next(_n);
            ulong off = (ulong)i * _p + (Chance(50) ? 0 : (ulong)_r.Next(0, (int)(_p / 8)) * 8);
            return new Op("access", ("at", $"{region}+{H(off)}"), ("rw", Chance(50) ? "r" : "w"), ("val", H((ulong)_r.Next(1, 256))));
        }

        private Op Copy()
        {
            var (dst, len) = Range();
            int k = _r.Next(100);
            string src = k < 72 ? $"S+{H(dst.StartsWith("A+", StringComparison.Ordinal) ? Op.ParseNum(dst[2..]) % ((ulong)_n * _p) : 0)}"
                : k < 80 ? "S+0x10"
                : k < 86 ? "0x0"
                : k < 92 || !_type.HasPageCache() ? "A-0x1000"
                : "L+0x0";
            if (len > (ulong)_n * _p && src.StartsWith('S'))
                len = (ulong)_n * _p;
            return new Op("copy", ("dst", dst), ("src", src), ("len", H(len)), ("mode", H(Mode(3))), ("fill", H((ulong)_r.Next(1, 256))));
        }

        private Op Move()
        {
            int i = _r.Next(_n), j = _r.Next(_n), k = _r.Next(1, _n - Math.Max(i, j) + 1);
            return new Op("move", ("dst", At('A', (long)((ulong)i * _p))), ("src", At('A', (long)((ulong)j * _p))), ("len", H((ulong)k * _p)), ("mode", H(Mode(3))));
        }

        private Op Mremap()
        {
            int i = _r.Next(_n), k = _r.Next(1, _n - i + 1), j = _r.Next(_n);
            string old = At('A', (long)((ulong)i * _p));
            ulong len = (ulong)k * _p;
            return _r.Next(4) switch
            {
                0 => new Op("mremap", ("old", old), ("oldlen", H(len)), ("newlen", H(len)), ("flags", "3"), ("new", At('X', (long)((ulong)j * _p)))),
                1 => new Op("mremap", ("old", old), ("oldlen", H(len)), ("newlen", H(len)), ("flags", "7"), ("new", At('X', (long)((ulong)j * _p)))),
                2 => new Op("mremap", ("old", old), ("oldlen", H(len)), ("newlen", H(Math.Max(_p, len - _p))), ("flags", "0"), ("new", "0x0")),
                _ => new Op("mremap", ("old", old), ("oldlen", H(len)), ("newlen", H(len + _p)), ("flags", "0"), ("new", "0x0")),
            };
        }
    }
}
