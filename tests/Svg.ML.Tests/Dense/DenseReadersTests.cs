using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using Svg.ML.Dense.Data;
using Svg.ML.Tests.Training;
using Xunit;

namespace Svg.ML.Tests.Dense;

public class DenseReadersTests
{
    /// <summary>A minimal PNG writer (valid CRCs, so other decoders read it too); row y uses filter y % 2 (None, Sub).</summary>
    static void WritePng(string path, int w, int h, int depth, int colorType, int channels, Func<int, int, int, int> sample, byte[]? palette = null)
    {
        int bpp = channels * depth / 8, stride = w * bpp;
        var raw = new byte[h * (stride + 1)];
        for (int y = 0; y < h; y++)
        {
            var line = new byte[stride];
            for (int x = 0; x < w; x++)
                for (int c = 0; c < channels; c++)
                {
                    int v = sample(x, y, c), o = x * bpp + c * depth / 8;
                    if (depth == 16) BinaryPrimitives.WriteUInt16BigEndian(line.AsSpan(o), (ushort)v); else line[o] = (byte)v;
                }
            int filter = y % 2;
            raw[y * (stride + 1)] = (byte)filter;
            for (int i = 0; i < stride; i++)
                raw[y * (stride + 1) + 1 + i] = (byte)(line[i] - (filter == 1 && i >= bpp ? line[i - bpp] : 0));
        }
        using var f = File.Create(path);
        f.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, w);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), h);
        ihdr[8] = (byte)depth; ihdr[9] = (byte)colorType;
        Chunk(f, "IHDR", ihdr);
        if (palette is not null) Chunk(f, "PLTE", palette);
        using (var ms = new MemoryStream())
        {
            using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true)) z.Write(raw);
            Chunk(f, "IDAT", ms.ToArray());
        }
        Chunk(f, "IEND", []);
    }

    static void Chunk(Stream s, string type, byte[] data)
    {
        var head = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(head, data.Length);
        System.Text.Encoding.ASCII.GetBytes(type).CopyTo(head, 4);
        s.Write(head);
        s.Write(data);
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32([.. head.AsSpan(4), .. data]));
        s.Write(crc);
    }

    static uint Crc32(byte[] bytes)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in bytes)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    [Fact]
    public void SixteenBitPng_KeepsAllSixteenBits()
    {
        using var dir = new TempDirectory();
        string path = dir.File("depth.png");
        int[] values = [51234, 1, 0, 65535, 256, 51234 - 255];   // 51234 = 0xC822: an 8-bit decode would keep 0xC8 only
        WritePng(path, 3, 2, 16, 0, 1, (x, y, _) => values[y * 3 + x]);
        var (w, h, samples) = PngSamples.Read(path);
        Assert.Equal((3, 2), (w, h));
        Assert.Equal(values.Select(v => (ushort)v), samples);
        var (_, _, metres) = DenseReaders.ReadDepth16(path);
        Assert.Equal(51.234f, metres[0], 1e-4f);   // float32 of 51.234: ulp 4e-6
        Assert.Equal(0f, metres[2]);
    }

    [Fact]
    public void Masks_Ade20kShiftsAndIgnoresZero_VocKeeps255_OutOfRangeNamesTheFile()
    {
        using var dir = new TempDirectory();
        string ade = dir.File("ade.png"), voc = dir.File("voc.png");
        int[] a = [0, 1, 150, 7];
        WritePng(ade, 2, 2, 8, 0, 1, (x, y, _) => a[y * 2 + x]);
        Assert.Equal(new[] { 255, 0, 149, 6 }, DenseReaders.ReadMask(ade, MaskFormat.Ade20k, 150).Classes);
        var e = Assert.Throws<InvalidDataException>(() => DenseReaders.ReadMask(ade, MaskFormat.Ade20k, 100));
        Assert.Contains(ade, e.Message);
        Assert.Contains("150", e.Message);
        int[] v = [0, 255, 20, 3];
        WritePng(voc, 2, 2, 8, 3, 1, (x, y, _) => v[y * 2 + x], palette: new byte[256 * 3]);
        Assert.Equal(new[] { 0, 255, 20, 3 }, DenseReaders.ReadMask(voc, MaskFormat.Voc, 21).Classes);
        Assert.Throws<InvalidDataException>(() => DenseReaders.ReadMask(voc, MaskFormat.Voc, 20));
        File.WriteAllText(dir.File("bad.png"), "not a png");
        Assert.Contains("bad.png", Assert.Throws<InvalidDataException>(() => DenseReaders.ReadMask(dir.File("bad.png"), MaskFormat.Voc, 21)).Message);
    }

    [Fact]
    public void PairedFolders_MissingAnnotationOrSizeMismatch_FailsNamingTheFile_OrIsSkippedAndCounted()
    {
        using var dir = new TempDirectory();
        string images = Path.Combine(dir.Path, "images", "training"), ann = Path.Combine(dir.Path, "annotations", "training");
        Directory.CreateDirectory(images);
        Directory.CreateDirectory(ann);
        WritePng(Path.Combine(images, "a.png"), 4, 3, 8, 2, 3, (x, y, c) => 40 * c + x);
        WritePng(Path.Combine(images, "b.png"), 4, 3, 8, 2, 3, (x, y, c) => 9);
        WritePng(Path.Combine(images, "c.png"), 4, 3, 8, 2, 3, (x, y, c) => 9);
        WritePng(Path.Combine(ann, "a.png"), 4, 3, 8, 0, 1, (x, y, _) => 1 + x);
        WritePng(Path.Combine(ann, "c.png"), 3, 3, 8, 0, 1, (x, y, _) => 1);    // wrong width
        Assert.Contains("b.png", Assert.Throws<FileNotFoundException>(() => DenseReaders.PairedFolders(dir.Path, "training", false, out _)).Message);
        var pairs = DenseReaders.PairedFolders(dir.Path, "training", skipBadRows: true, out int missing);
        Assert.Equal(1, missing);
        Assert.Equal(2, pairs.Count);
        var ex = Assert.Throws<InvalidDataException>(() => DenseReaders.ReadMasks(pairs, MaskFormat.Ade20k, 150, false, out _));
        Assert.Contains("c.png", ex.Message);
        var rows = DenseReaders.ReadMasks(pairs, MaskFormat.Ade20k, 150, skipBadRows: true, out var problems);
        Assert.Single(rows);
        Assert.Single(problems);
        Assert.Equal(new[] { 0, 1, 2, 3 }, rows[0].Classes.Take(4));
    }

    [Fact]
    public void Sample_TakesTheFeaturizersCentralSquare_NearestNeighbour()
    {
        float[] map = [0, 1, 2, 3,
                       10, 11, 12, 13];       // 4 wide, 2 high
        // CenterCrop, size 2: square side 2 from column 1; columns ⌊1 + (x + ½)·2/2⌋ = 1, 2; rows ⌊(y + ½)·2/2⌋ = 0, 1.
        Assert.Equal(new float[] { 1, 2, 11, 12 }, DenseDataViews.Sample(map, 4, 2, 2));
        // Stretch, size 2: columns ⌊(x + ½)·4/2⌋ = 1, 3.
        Assert.Equal(new float[] { 1, 3, 11, 13 }, DenseDataViews.Sample(map, 4, 2, 2, Svg.ML.Data.ResizeMode.Stretch));
        // Enlarging repeats pixels: size 4 over the 2×2 square → each source pixel twice in each direction.
        Assert.Equal(new float[] { 1, 1, 2, 2, 1, 1, 2, 2, 11, 11, 12, 12, 11, 11, 12, 12 }, DenseDataViews.Sample(map, 4, 2, 4));
    }

    [Fact]
    public void DataViews_Ade20kAndDepthFolders_GiveFixedSizeTargets_AndSkipBadPairsNamingThem()
    {
        using var dir = new TempDirectory();
        string images = Path.Combine(dir.Path, "images", "training"), ann = Path.Combine(dir.Path, "annotations", "training");
        Directory.CreateDirectory(images);
        Directory.CreateDirectory(ann);
        WritePng(Path.Combine(images, "a.png"), 4, 2, 8, 2, 3, (x, y, c) => 40 * c + x);
        WritePng(Path.Combine(images, "b.png"), 4, 2, 8, 2, 3, (x, y, c) => 9);
        WritePng(Path.Combine(ann, "a.png"), 4, 2, 8, 0, 1, (x, y, _) => y * 4 + x);      // ADE: 0 → ignore, v → v − 1
        WritePng(Path.Combine(ann, "b.png"), 2, 2, 8, 0, 1, (x, y, _) => 1);              // wrong size
        var ml = new Microsoft.ML.MLContext(seed: 1);
        var pairs = DenseReaders.PairedFolders(dir.Path, "training", false, out _);
        Assert.Contains("b.png", Assert.Throws<InvalidDataException>(() => DenseDataViews.Segmentation(ml, pairs, MaskFormat.Ade20k, 10, 2, false, out _)).Message);
        var seg = DenseDataViews.Segmentation(ml, pairs, MaskFormat.Ade20k, 10, 2, skipBadRows: true, out var problems);
        Assert.Contains("b.png", Assert.Single(problems));
        var type = (Microsoft.ML.Data.VectorDataViewType)seg.Schema["Target"].Type;
        Assert.Equal(new[] { 2, 2 }, type.Dimensions.ToArray());
        var target = Assert.Single(seg.GetColumn<float[]>("Target").ToArray());
        Assert.Equal(new float[] { 0, 1, 4, 5 }, target);                                     // mask values 1, 2, 5, 6 minus one
        Assert.EndsWith("a.png", Assert.Single(seg.GetColumn<string>("ImagePath").ToArray()));

        // Depth: a 16-bit PNG in millimetres and a float .npy in metres give the same metres.
        string depthPng = dir.File("a_depth.png"), depthNpy = dir.File("a_depth.npy");
        WritePng(depthPng, 4, 2, 16, 0, 1, (x, y, _) => 1000 + 250 * (y * 4 + x));
        File.WriteAllBytes(depthNpy, Svg.ML.Tests.Data.NpyReaderTests.Npy("<f4", "(2, 4)",
            Svg.ML.Tests.Data.NpyReaderTests.Floats(Enumerable.Range(0, 8).Select(i => 1f + 0.25f * i).ToArray())));
        var depth = DenseDataViews.Depth(ml, [new DensePair(pairs[0].ImagePath, depthPng), new DensePair(pairs[0].ImagePath, depthNpy)], 2, false, out _)
            .GetColumn<float[]>("Target").ToArray();
        Assert.Equal(new float[] { 1.25f, 1.5f, 2.25f, 2.5f }, depth[0]);                   // columns 1, 2 of both rows
        Assert.Equal(depth[0], depth[1]);
    }
}
