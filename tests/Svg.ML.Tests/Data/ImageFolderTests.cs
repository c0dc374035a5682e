using Microsoft.ML.Data;
using Svg.ML.Data;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Data;

public class ImageFolderTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("svgml-imgfolder-").FullName;
    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Writes an opaque RGB PNG whose pixel (x, y) is (r0 + x, g0 + y, b0 + x + y) and returns those values [3, H, W].</summary>
    static byte[,,] WritePng(string path, int width, int height, int r0, int g0, int b0)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var rgba = new byte[width * height * 4];
        var expected = new byte[3, height, width];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                byte r = (byte)(r0 + x), g = (byte)(g0 + y), b = (byte)(b0 + x + y);
                int i = (y * width + x) * 4;
                (rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]) = (r, g, b, 255);
                (expected[0, y, x], expected[1, y, x], expected[2, y, x]) = (r, g, b);
            }
        using var img = MLImage.CreateFromPixels(width, height, MLPixelFormat.Rgba32, rgba);
        img.Save(path);
        return expected;
    }

    static byte[] Flat(byte[,,] a) => a.Cast<byte>().ToArray();

    [Fact]
    public void Load_SortsClasses_DecodesRgbExactly_AndRecordsTheFiles()
    {
        var dog1 = WritePng(Path.Combine(_root, "b_dog", "1.png"), 8, 6, 10, 20, 30);
        var cat2 = WritePng(Path.Combine(_root, "a_cat", "sub", "2.png"), 8, 6, 100, 50, 0);
        var cat1 = WritePng(Path.Combine(_root, "a_cat", "1.png"), 8, 6, 200, 0, 60);
        File.WriteAllText(Path.Combine(_root, "a_cat", "notes.txt"), "not an image");

        using var data = ImageFolder.Load(_root, imageSize: null);
        Assert.Equal(new[] { "a_cat", "b_dog" }, data.ClassNames);
        Assert.Equal(new long[] { 0, 0, 1 }, data.Labels);
        Assert.Equal(new long[] { 3, 3, 6, 8 }, data.Pixels.shape);
        // Files of a class in ordinal order of their path: a_cat/1.png, a_cat/sub/2.png.
        Assert.Equal(Flat(cat1), data.Pixels[0].data<byte>().ToArray());
        Assert.Equal(Flat(cat2), data.Pixels[1].data<byte>().ToArray());
        Assert.Equal(Flat(dog1), data.Pixels[2].data<byte>().ToArray());

        // The identity changes when a file changes.
        string before = data.Identity;
        WritePng(Path.Combine(_root, "b_dog", "1.png"), 8, 6, 11, 20, 30);
        File.SetLastWriteTimeUtc(Path.Combine(_root, "b_dog", "1.png"), DateTime.UtcNow.AddMinutes(1));
        using var again = ImageFolder.Load(_root, imageSize: null);
        Assert.NotEqual(before, again.Identity);
    }

    [Fact]
    public void Load_ResizesImagesOfOtherSizes_AndRequiresASizeWhenTheyDiffer()
    {
        WritePng(Path.Combine(_root, "x", "a.png"), 8, 8, 0, 0, 0);
        WritePng(Path.Combine(_root, "x", "b.png"), 16, 12, 40, 40, 40);
        var e = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(_root, imageSize: null));
        Assert.Contains("give an image size", e.Message);

        using var data = ImageFolder.Load(_root, imageSize: 8);
        Assert.Equal(new long[] { 2, 3, 8, 8 }, data.Pixels.shape);
        // The 16×12 image: central 12×12 crop, brought to 8×8 as ImageTensors.ToSquare does, then rounded to bytes.
        using var src = ImageTensors.Load(Path.Combine(_root, "x", "b.png")).unsqueeze(0).to(ScalarType.Float32) / 255f;
        using var want = ImageTensors.ToBytes(ImageTensors.ToSquare(src, 8, ResizeMode.CenterCrop));
        Assert.Equal(want.data<byte>().ToArray(), data.Pixels[1].data<byte>().ToArray());
    }

    [Fact]
    public void Load_RealPhotographs_DecodesJpegAndPng()
    {
        string cats = Path.Combine(_root, "cat"), objects = Path.Combine(_root, "objects");
        Directory.CreateDirectory(cats); Directory.CreateDirectory(objects);
        File.Copy(TestData.SkimagePhoto("chelsea.png"), Path.Combine(cats, "chelsea.png"));
        File.Copy(TestData.SkimagePhoto("rocket.jpg"), Path.Combine(objects, "rocket.jpg"));
        File.Copy(TestData.SkimagePhoto("coffee.png"), Path.Combine(objects, "coffee.png"));
        using var data = ImageFolder.Load(_root, imageSize: 64);
        Assert.Equal(new[] { "cat", "objects" }, data.ClassNames);
        Assert.Equal(new long[] { 0, 1, 1 }, data.Labels);
        Assert.Equal(new long[] { 3, 3, 64, 64 }, data.Pixels.shape);
        using var x = data.Images(0, 3);
        foreach (var i in new long[] { 0, 1, 2 })
        {
            float m = x[i].mean().item<float>(), sd = x[i].std().item<float>();
            Assert.InRange(m, 0.15f, 0.85f);
            Assert.True(sd > 0.05f, $"image {i} is flat");
        }
        using var first = ImageFolder.Load(_root, imageSize: 32, limitPerClass: 1);
        Assert.Equal(new long[] { 0, 1 }, first.Labels); // objects/coffee.png only (ordinal order)
        Assert.NotEqual(data.Identity, first.Identity);
    }
}
