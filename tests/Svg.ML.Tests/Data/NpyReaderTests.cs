using System.IO.Compression;
using System.Text;
using Svg.ML.Data;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Data;

public class NpyReaderTests
{
    /// <summary>A version-1 .npy file as NumPy writes it: magic, version, header length, dict padded to 64 bytes with '\n'.</summary>
    internal static byte[] Npy(string descr, string shape, byte[] data, bool fortran = false)
    {
        string dict = $"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': {shape}, }}";
        int total = 10 + dict.Length + 1;
        dict = dict.PadRight(dict.Length + (64 - total % 64) % 64) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 };
        bytes.AddRange(BitConverter.GetBytes((ushort)dict.Length));
        bytes.AddRange(Encoding.Latin1.GetBytes(dict));
        bytes.AddRange(data);
        return bytes.ToArray();
    }

    internal static byte[] Floats(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [Fact]
    public void Float32Array_KeepsShapeValuesAndInfinity()
    {
        var file = Npy("<f4", "(2, 3)", Floats(1.5f, -2f, float.PositiveInfinity, 0f, 7.25f, 59.9f));
        using var t = NpyReader.Read(new MemoryStream(file));
        Assert.Equal(ScalarType.Float32, t.dtype);
        Assert.Equal(new long[] { 2, 3 }, t.shape);
        Assert.Equal(new[] { 1.5f, -2f, float.PositiveInfinity, 0f, 7.25f, 59.9f }, t.data<float>().ToArray());
    }

    [Fact]
    public void Uint16_IsWidenedExactly_AndNpzEntriesAreFoundByName()
    {
        var values = new ushort[] { 0, 1, 51234, 65535 };
        var file = Npy("<u2", "(4,)", values.SelectMany(BitConverter.GetBytes).ToArray());
        string path = Path.Combine(Path.GetTempPath(), $"npy-test-{Guid.NewGuid():N}.npz");
        try
        {
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
            {
                using (var s = zip.CreateEntry("other.npy").Open()) s.Write(Npy("|u1", "(1,)", [9]));
                using (var s = zip.CreateEntry("arr_0.npy").Open()) s.Write(file);
            }
            using var t = NpyReader.ReadNpz(path, "arr_0");
            Assert.Equal(new[] { 0, 1, 51234, 65535 }, t.data<int>().ToArray());
            using var first = NpyReader.ReadNpz(path);
            Assert.Equal((byte)9, first.data<byte>()[0]);
            var e = Assert.Throws<InvalidDataException>(() => NpyReader.ReadNpz(path, "missing"));
            Assert.Contains("arr_0.npy", e.Message);   // lists what the archive holds
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void UnsupportedOrTruncatedFiles_FailWithTheSourceNamed()
    {
        Assert.Contains("Fortran", Assert.Throws<InvalidDataException>(() => NpyReader.Read(new MemoryStream(Npy("<f4", "(1,)", Floats(1), fortran: true)), "a.npy")).Message);
        Assert.Contains("'>f4'", Assert.Throws<InvalidDataException>(() => NpyReader.Read(new MemoryStream(Npy(">f4", "(1,)", Floats(1))), "b.npy")).Message);
        var e = Assert.Throws<InvalidDataException>(() => NpyReader.Read(new MemoryStream(Npy("<f4", "(3,)", Floats(1))), "c.npy"));
        Assert.Contains("c.npy", e.Message);
        Assert.Contains("not a .npy", Assert.Throws<InvalidDataException>(() => NpyReader.Read(new MemoryStream(new byte[16]), "d.npy")).Message);
    }
}
