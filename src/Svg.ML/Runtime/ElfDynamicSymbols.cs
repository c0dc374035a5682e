using System.Buffers.Binary;
using System.Text;

namespace Svg.ML.Runtime;

/// <summary>
/// Reads the dynamic symbol table (<c>.dynsym</c>) of a little-endian ELF64 shared library without loading it: which
/// symbols it defines and which it needs from other libraries. Reads only the section headers and the three symbol
/// sections (libtorch_cpu.so is ~460 MB; its tables are ~10 MB), so checking a libtorch install takes well under a second.
/// </summary>
public static class ElfDynamicSymbols
{
    const uint ShtDynSym = 11, ShtGnuVerSym = 0x6fffffff;
    const int SymSize = 24, StbWeak = 2;

    /// <summary>The symbols <paramref name="path"/> defines (any binding or version).</summary>
    public static HashSet<string> Defined(string path)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        Scan(path, (name, defined, _, _) => { if (defined) set.Add(Encoding.ASCII.GetString(name)); });
        return set;
    }

    /// <summary>
    /// The symbols <paramref name="path"/> needs from other libraries and binds strongly, without a version: for
    /// libLibTorchSharp.so these are exactly its libtorch/c10 imports (glibc's and libstdc++'s carry versions).
    /// </summary>
    public static List<string> NeededUnversioned(string path)
    {
        var list = new List<string>();
        Scan(path, (name, defined, weak, versioned) => { if (!defined && !weak && !versioned) list.Add(Encoding.ASCII.GetString(name)); });
        return list;
    }

    /// <summary>The entries of <paramref name="needed"/> that none of <paramref name="libraries"/> defines, sorted.</summary>
    public static List<string> Missing(IEnumerable<string> needed, IEnumerable<string> libraries)
    {
        var remaining = new HashSet<string>(needed, StringComparer.Ordinal);
        var lookup = remaining.GetAlternateLookup<ReadOnlySpan<char>>();   // no string per scanned symbol
        char[] buffer = new char[256];
        foreach (var lib in libraries)
            Scan(lib, (name, defined, _, _) =>
            {
                if (!defined || remaining.Count == 0) return;
                if (name.Length > buffer.Length) buffer = new char[name.Length * 2];
                int n = Encoding.ASCII.GetChars(name, buffer);
                lookup.Remove(buffer.AsSpan(0, n));
            });
        return remaining.OrderBy(n => n, StringComparer.Ordinal).ToList();
    }

    delegate void SymbolVisitor(ReadOnlySpan<byte> name, bool defined, bool weak, bool versioned);

    static void Scan(string path, SymbolVisitor visit)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        byte[] eh = Read(f, 0, 64, path);
        if (eh[0] != 0x7f || eh[1] != (byte)'E' || eh[2] != (byte)'L' || eh[3] != (byte)'F')
            throw new InvalidDataException($"{path}: not an ELF file.");
        if (eh[4] != 2 || eh[5] != 1) throw new InvalidDataException($"{path}: only little-endian ELF64 is supported.");
        long shoff = BinaryPrimitives.ReadInt64LittleEndian(eh.AsSpan(0x28));
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(eh.AsSpan(0x3A));
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(eh.AsSpan(0x3C));
        byte[] sh = Read(f, shoff, (long)shentsize * shnum, path);
        int Section(uint type)
        {
            for (int s = 0; s < shnum; s++)
                if (BinaryPrimitives.ReadUInt32LittleEndian(sh.AsSpan(s * shentsize + 4)) == type) return s;
            return -1;
        }
        (long Offset, long Size, int Link) Header(int s) => (
            BinaryPrimitives.ReadInt64LittleEndian(sh.AsSpan(s * shentsize + 0x18)),
            BinaryPrimitives.ReadInt64LittleEndian(sh.AsSpan(s * shentsize + 0x20)),
            (int)BinaryPrimitives.ReadUInt32LittleEndian(sh.AsSpan(s * shentsize + 0x28)));

        int dynsym = Section(ShtDynSym);
        if (dynsym < 0) throw new InvalidDataException($"{path}: no dynamic symbol table (.dynsym).");
        var (symOff, symSize, strIndex) = Header(dynsym);
        var (strOff, strSize, _) = Header(strIndex);
        byte[] syms = Read(f, symOff, symSize, path), strs = Read(f, strOff, strSize, path);
        int versym = Section(ShtGnuVerSym);
        byte[]? vers = versym < 0 ? null : Read(f, Header(versym).Offset, Header(versym).Size, path);

        int count = (int)(symSize / SymSize);
        for (int i = 1; i < count; i++)   // entry 0 is the null symbol
        {
            var e = syms.AsSpan(i * SymSize, SymSize);
            int nameOff = (int)BinaryPrimitives.ReadUInt32LittleEndian(e);
            if (nameOff == 0 || nameOff >= strs.Length) continue;
            var rest = strs.AsSpan(nameOff);
            int end = rest.IndexOf((byte)0);
            var name = end < 0 ? rest : rest[..end];
            bool defined = BinaryPrimitives.ReadUInt16LittleEndian(e[6..]) != 0;   // st_shndx != SHN_UNDEF
            bool weak = e[4] >> 4 == StbWeak;
            // .gnu.version: 0 local, 1 global (no version), >= 2 an entry of .gnu.version_r / _d; bit 15 marks hidden.
            bool versioned = vers is not null && (BinaryPrimitives.ReadUInt16LittleEndian(vers.AsSpan(i * 2)) & 0x7fff) >= 2;
            visit(name, defined, weak, versioned);
        }
    }

    static byte[] Read(FileStream f, long offset, long count, string path)
    {
        if (offset < 0 || count < 0 || offset + count > f.Length)
            throw new InvalidDataException($"{path}: truncated ELF file (needs bytes {offset}..{offset + count}, has {f.Length}).");
        var buffer = new byte[count];
        f.Position = offset;
        f.ReadExactly(buffer);
        return buffer;
    }
}
