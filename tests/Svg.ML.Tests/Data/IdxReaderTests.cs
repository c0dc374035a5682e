using System.Buffers.Binary;
using System.IO.Compression;
using Svg.ML.Data;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Data;

public class IdxReaderTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("svgml-idx-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static byte[] Int16Idx(short[] values, params int[] shape)
    {
        var b = new List<byte> { 0, 0, 0x0B, (byte)shape.Length };
        var d4 = new byte[4];
        foreach (var d in shape) { BinaryPrimitives.WriteInt32BigEndian(d4, d); b.AddRange(d4); }
        var d2 = new byte[2];
        foreach (var v in values) { BinaryPrimitives.WriteInt16BigEndian(d2, v); b.AddRange(d2); }
        return b.ToArray();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reads_BigEndianValues_RawOrGzip_WithALimit(bool gzip)
    {
        short[] values = { 1, -2, 300, -4000, 5, 6, 7, 8, 9, 10, 11, -32768 };
        var bytes = Int16Idx(values, 3, 2, 2);
        string path = Path.Combine(_dir, gzip ? "a.idx.gz" : "a.idx");
        if (gzip)
        {
            using var f = File.Create(path);
            using var gz = new GZipStream(f, CompressionLevel.Optimal);
            gz.Write(bytes);
        }
        else File.WriteAllBytes(path, bytes);

        var all = IdxReader.Read(path);
        Assert.Equal(IdxDataType.Int16, all.DataType);
        Assert.Equal(new[] { 3, 2, 2 }, all.Shape);
        using var t = all.ToTensor();
        Assert.Equal(ScalarType.Int16, t.dtype);
        Assert.Equal(values, t.data<short>().ToArray());

        var two = IdxReader.Read(path, maxItems: 2);
        Assert.Equal(new[] { 2, 2, 2 }, two.Shape);
        Assert.Equal(3, two.TotalItems);
        using var t2 = two.ToTensor();
        Assert.Equal(values[..8], t2.data<short>().ToArray());
    }

    [Fact]
    public void Truncated_Or_NotIdx_Fails_Clearly()
    {
        var bytes = Int16Idx(new short[] { 1, 2, 3, 4 }, 2, 2);
        string truncated = Path.Combine(_dir, "t.idx");
        File.WriteAllBytes(truncated, bytes[..^3]);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.Read(truncated));
        Assert.Contains("truncated", e.Message);
        string png = Path.Combine(_dir, "x.idx");
        File.WriteAllBytes(png, new byte[] { 0x89, 0x50, 0x4E, 0x47, 0, 0, 0, 0 });
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => IdxReader.Read(png)).Message);
    }

    /// <summary>
    /// The bundled subset is byte for byte the first 6 000 / 2 000 items of the official files: SHA-256 of the payload
    /// (after the IDX header) computed with Python over the first n items of Debian's dataset-fashion-mnist files.
    /// </summary>
    [Theory]
    [InlineData("train-images-idx3-ubyte.gz", 6000, "c407c19496b306f56f0ed298ad5b11dbcfcc75fc631f4f8e3bc07b8000f1a88b")]
    [InlineData("train-labels-idx1-ubyte.gz", 6000, "630a374d65ffe2f321251c9e84474d5a90d464571a2a6418ad322c1d9a47fad6")]
    [InlineData("t10k-images-idx3-ubyte.gz", 2000, "09bbac78738f0229a68f7ca74e62665d7fb34f45ea7a3509ab5c4a202c1370de")]
    [InlineData("t10k-labels-idx1-ubyte.gz", 2000, "a86243d2b2400909bc0a82f5fd5c9df83bf827852a1543e3dc70af890035a9d4")]
    public void BundledFashionMnist_IsThePrefixOfTheOfficialFiles(string file, int count, string sha256)
    {
        var idx = IdxReader.Read(TestData.FashionMnist(file));
        Assert.Equal(count, idx.Shape[0]);
        Assert.Equal(sha256, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(idx.Data)));
    }

    /// <summary>Reference values read with Python (gzip + numpy.frombuffer) from Debian's dataset-fashion-mnist.</summary>
    [Fact]
    public void FashionMnist_TestSplit_MatchesValuesReadWithNumpy()
    {
        var images = IdxReader.Read(TestData.FashionMnist("t10k-images-idx3-ubyte.gz"), maxItems: 4);
        Assert.Equal(2000, images.TotalItems);
        Assert.Equal(new[] { 4, 28, 28 }, images.Shape);

        using var data = FashionMnist.Load(train: false, limit: 12);
        Assert.Equal(new long[] { 9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5 }, data.Labels);
        Assert.Equal("Ankle boot", data.ClassNames[(int)data.Labels[0]]);
        Assert.Equal(new long[] { 12, 1, 28, 28 }, data.Pixels.shape);
        using var sums = data.Pixels.narrow(0, 0, 4).to(ScalarType.Int64).sum(new long[] { 1, 2, 3 });
        Assert.Equal(new long[] { 33456, 100994, 51520, 35377 }, sums.data<long>().ToArray());
        using var row = data.Pixels[0, 0, 14].narrow(0, 10, 8);
        Assert.Equal(new byte[] { 0, 0, 98, 136, 110, 109, 110, 162 }, row.data<byte>().ToArray());
        Assert.StartsWith("idx:", data.Identity);
        Assert.EndsWith("|n=12", data.Identity);
    }

    [Fact]
    public void FashionMnist_Batches_AreThreeChannelFloatImagesAtTheTargetSize()
    {
        TestData.FashionMnist("t10k-images-idx3-ubyte.gz");
        using var data = FashionMnist.Load(limit: 10);
        var batches = data.Batches(batchSize: 4, size: 32).ToList();
        Assert.Equal(new long[] { 4, 4, 2 }, batches.Select(b => b.Images.shape[0]).ToArray());
        var (x, y) = batches[0];
        Assert.Equal(new long[] { 4, 3, 32, 32 }, x.shape);
        Assert.Equal(ScalarType.Float32, x.dtype);
        Assert.Equal(new long[] { 9, 2, 1, 1 }, y.data<long>().ToArray());
        Assert.True(x.min().item<float>() >= 0f && x.max().item<float>() <= 1f);
        Assert.True(x.max().item<float>() > 0.5f);
        Assert.Equal(0f, (x[.., 0] - x[.., 2]).abs().max().item<float>()); // grayscale → 3 equal channels
        // Native size: exact bytes / 255.
        using var native = data.Images(0, 1);
        using var expected = data.Pixels.narrow(0, 0, 1).to(ScalarType.Float32) / 255f;
        Assert.Equal(0f, (native[.., 1..2] - expected).abs().max().item<float>());
        foreach (var (a, b) in batches) { a.Dispose(); b.Dispose(); }
    }

    [Fact]
    public void SavePngs_WritesFilesThatDecodeToTheSamePixels()
    {
        TestData.FashionMnist("t10k-images-idx3-ubyte.gz");
        using var data = FashionMnist.Load(limit: 5);
        var files = data.SavePngs(_dir, "t-", start: 2, count: 3);
        Assert.Equal(new[] { "t-00002.png", "t-00003.png", "t-00004.png" }, files.Select(f => Path.GetFileName(f.Path)).ToArray());
        Assert.Equal(data.Labels[2..5], files.Select(f => f.Label).ToArray());
        for (int i = 0; i < 3; i++)
        {
            using var decoded = ImageTensors.Load(files[i].Path);                         // [3, 28, 28] RGB
            using var expected = data.Pixels[2 + i].expand(3, -1, -1);
            Assert.Equal(expected.contiguous().data<byte>().ToArray(), decoded.data<byte>().ToArray());
        }
    }
}
