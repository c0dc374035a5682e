using System.Runtime.InteropServices;
using System.Text;

namespace Svg.ML.Runtime;

/// <summary>
/// Makes TorchSharp 0.107's <c>libLibTorchSharp.so</c> loadable on glibc systems whose libstdc++ predates GCC 13
/// (Debian 12, Ubuntu 22.04). The library asks for version <c>GLIBCXX_3.4.32</c> only for
/// <c>std::ios_base_library_init()</c>, a bare reference with no relocation. Marking that one version need
/// <em>weak</em> (<c>VER_FLG_WEAK</c> in its <c>.gnu.version_r</c> auxiliary entry) lets the dynamic loader accept
/// an older libstdc++; where libstdc++ has the version the flag changes nothing.
/// </summary>
/// <remarks>
/// Only copies of the library outside the NuGet package cache are patched (the app's output folder); the cache is
/// never written. The patch is idempotent and atomic (temp file + rename), and a no-op on other OSes or where the
/// system libstdc++ already defines the version.
/// </remarks>
public static class GlibcxxWeakVersionPatch
{
    public const string LibraryFileName = "libLibTorchSharp.so";
    public const string MissingVersion = "GLIBCXX_3.4.32";
    const ushort VerFlagWeak = 2;
    const uint ShtGnuVerneed = 0x6ffffffe;

    /// <summary>True when the running process's libstdc++ defines <see cref="MissingVersion"/>.</summary>
    public static bool SystemLibstdcxxHasVersion()
    {
        string? path = FindLibstdcxx();
        if (path is null) return true; // no libstdc++ found: nothing we can do, leave files alone
        byte[] needle = Encoding.ASCII.GetBytes(MissingVersion + "\0");
        return File.ReadAllBytes(path).AsSpan().IndexOf(needle) >= 0;
    }

    static string? FindLibstdcxx()
    {
        NativeLibrary.TryLoad("libstdc++.so.6", out _);
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int i = line.IndexOf('/');
                if (i >= 0 && line.Contains("libstdc++.so", StringComparison.Ordinal)) return line[i..].Trim();
            }
        }
        catch (IOException) { }
        foreach (var dir in new[] { "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib" })
            if (File.Exists(Path.Combine(dir, "libstdc++.so.6"))) return Path.Combine(dir, "libstdc++.so.6");
        return null;
    }

    /// <summary>
    /// Marks the <see cref="MissingVersion"/> need of the ELF file at <paramref name="path"/> weak, in place.
    /// Returns true when the file was changed, false when it already was weak or never needed the version.
    /// </summary>
    public static bool PatchFile(string path)
    {
        byte[] elf = File.ReadAllBytes(path);
        int offset = FindVersionNeedFlags(elf, MissingVersion);
        if (offset < 0) return false;
        ushort flags = BitConverter.ToUInt16(elf, offset);
        if ((flags & VerFlagWeak) != 0) return false;
        BitConverter.TryWriteBytes(elf.AsSpan(offset, 2), (ushort)(flags | VerFlagWeak));
        string tmp = path + $".svgml-{Environment.ProcessId}.tmp";
        File.WriteAllBytes(tmp, elf);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(tmp, File.GetUnixFileMode(path));
        File.Move(tmp, path, overwrite: true);
        return true;
    }

    /// <summary>True when the file's need of <see cref="MissingVersion"/> is weak (or absent).</summary>
    public static bool IsWeak(string path)
    {
        byte[] elf = File.ReadAllBytes(path);
        int offset = FindVersionNeedFlags(elf, MissingVersion);
        return offset < 0 || (BitConverter.ToUInt16(elf, offset) & VerFlagWeak) != 0;
    }

    /// <summary>File offset of the <c>vna_flags</c> field of the Vernaux entry naming <paramref name="version"/>, or -1.</summary>
    public static int FindVersionNeedFlags(byte[] elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("Not an ELF file.");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("Only little-endian ELF64 is supported.");
        long shoff = BitConverter.ToInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A), shnum = BitConverter.ToUInt16(elf, 0x3C);
        for (int s = 0; s < shnum; s++)
        {
            long sh = shoff + (long)s * shentsize;
            if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
            long secOff = BitConverter.ToInt64(elf, (int)sh + 0x18);
            int link = (int)BitConverter.ToUInt32(elf, (int)sh + 0x28);
            int count = (int)BitConverter.ToUInt32(elf, (int)sh + 0x2C); // sh_info = number of Verneed entries
            long strOff = BitConverter.ToInt64(elf, (int)(shoff + (long)link * shentsize) + 0x18);
            long vn = secOff;
            for (int n = 0; n < count; n++)
            {
                int cnt = BitConverter.ToUInt16(elf, (int)vn + 2);
                long vna = vn + BitConverter.ToUInt32(elf, (int)vn + 8);
                for (int a = 0; a < cnt; a++)
                {
                    long name = strOff + BitConverter.ToUInt32(elf, (int)vna + 8);
                    int end = Array.IndexOf(elf, (byte)0, (int)name);
                    if (Encoding.ASCII.GetString(elf, (int)name, end - (int)name) == version) return (int)vna + 4;
                    vna += BitConverter.ToUInt32(elf, (int)vna + 12);
                }
                uint next = BitConverter.ToUInt32(elf, (int)vn + 12);
                if (next == 0) break;
                vn += next;
            }
        }
        return -1;
    }
}
