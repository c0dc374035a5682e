using System.Text;
using Svg.ML.Data;
using Svg.ML.Dense.Data;
using Svg.ML.Tests.Data;
using Svg.ML.Tests.Training;
using Xunit;

namespace Svg.ML.Tests.Dense;

/// <summary>Depth stored as float maps (.pfm, .npy, .npz): values, orientation and invalid pixels.</summary>
public class FloatDepthTests
{
    /// <summary>A PFM as Middlebury writes it: header lines, then float32 rows from the bottom of the image.</summary>
    static byte[] Pfm(string magic, int w, int h, float scale, float[] topDownRows, bool littleEndian)
    {
        var bytes = new List<byte>(Encoding.ASCII.GetBytes($"{magic}\n{w} {h}\n{scale.ToString(System.Globalization.CultureInfo.InvariantCulture)}\n"));
        int rowValues = topDownRows.Length / h;
        for (int row = h - 1; row >= 0; row--)
            foreach (var v in topDownRows.AsSpan(row * rowValues, rowValues))
            {
                var b = BitConverter.GetBytes(v);
                if (BitConverter.IsLittleEndian != littleEndian) Array.Reverse(b);
                bytes.AddRange(b);
            }
        return bytes.ToArray();
    }

    static readonly float[] Depth = [1.5f, 2.25f, 0.125f, 9.75f, 3f, 4.5f];   // 3 wide, 2 high, top row first

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Pfm_ReadsBothByteOrders_TopRowFirst(bool littleEndian)
    {
        var file = Pfm("Pf", 3, 2, littleEndian ? -1f : 1f, Depth, littleEndian);
        var (w, h, c, values) = PfmReader.Read(new MemoryStream(file));
        Assert.Equal((3, 2, 1), (w, h, c));
        Assert.Equal(Depth, values);     // exact: the bytes are the floats
    }

    [Fact]
    public void Pfm_BadHeaderAndTruncatedDataNameTheSource()
    {
        Assert.Contains("x.pfm", Assert.Throws<InvalidDataException>(() => PfmReader.Read(new MemoryStream(Encoding.ASCII.GetBytes("P6\n3 2\n255\n")), "x.pfm")).Message);
        var file = Pfm("Pf", 3, 2, -1f, Depth, true);
        var e = Assert.Throws<InvalidDataException>(() => PfmReader.Read(new MemoryStream(file[..^4]), "y.pfm"));
        Assert.Contains("y.pfm", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void ReadDepth_FloatFiles_GiveMetres_InvalidBecomesZero()
    {
        using var dir = new TempDirectory();
        float[] raw = [1.5f, float.NaN, float.PositiveInfinity, -2f, 0f, 4.5f];
        float[] expected = [1.5f, 0f, 0f, 0f, 0f, 4.5f];

        string pfm = dir.File("d.pfm");
        File.WriteAllBytes(pfm, Pfm("Pf", 3, 2, -1f, raw, true));
        var fromPfm = DenseReaders.ReadDepth(pfm);
        Assert.Equal((3, 2), (fromPfm.Width, fromPfm.Height));
        Assert.Equal(expected, fromPfm.Metres);

        string npy = dir.File("d.npy");
        File.WriteAllBytes(npy, NpyReaderTests.Npy("<f4", "(2, 3)", NpyReaderTests.Floats(raw)));
        var fromNpy = DenseReaders.ReadDepth(npy, floatScale: 1e-3);      // e.g. millimetres stored as floats
        Assert.Equal((3, 2), (fromNpy.Width, fromNpy.Height));
        Assert.Equal(expected.Select(v => v * 1e-3f), fromNpy.Metres);

        string npz = dir.File("d.npz");
        using (var zip = System.IO.Compression.ZipFile.Open(npz, System.IO.Compression.ZipArchiveMode.Create))
        using (var s = zip.CreateEntry("arr_0.npy").Open())
            s.Write(NpyReaderTests.Npy("<f4", "(1, 2, 3)", NpyReaderTests.Floats(raw)));
        Assert.Equal(expected, DenseReaders.ReadDepth(npz).Metres);
    }

    [Fact]
    public void ReadDepth_WrongShapeChannelsOrExtension_NamesTheFile()
    {
        using var dir = new TempDirectory();
        string rgb = dir.File("rgb.pfm");
        File.WriteAllBytes(rgb, Pfm("PF", 1, 2, -1f, [1, 2, 3, 4, 5, 6], true));
        Assert.Contains("rgb.pfm", Assert.Throws<InvalidDataException>(() => DenseReaders.ReadDepth(rgb)).Message);
        string cube = dir.File("cube.npy");
        File.WriteAllBytes(cube, NpyReaderTests.Npy("<f4", "(2, 2, 2)", NpyReaderTests.Floats(1, 2, 3, 4, 5, 6, 7, 8)));
        Assert.Contains("cube.npy", Assert.Throws<InvalidDataException>(() => DenseReaders.ReadDepth(cube)).Message);
        Assert.Contains("d.exr", Assert.Throws<NotSupportedException>(() => DenseReaders.ReadDepth(dir.File("d.exr"))).Message);
    }
}
