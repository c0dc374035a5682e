using Svg.ML.Data;

namespace Svg.ML.Tests.Data;

/// <summary>
/// Real data bundled with the repository (<c>data/</c>, found by <see cref="SampleData"/>): the first 6 000 / 2 000
/// Fashion-MNIST train / test images and a few CC0 / public-domain photographs and textures from scikit-image.
/// The same bytes on every machine, so every test reads the same data whatever the machine has installed.
/// </summary>
public static class TestData
{
    /// <summary>Folder of the bundled Fashion-MNIST subset.</summary>
    public static string FashionMnistDirectory => SampleData.FashionMnistDirectory;

    /// <summary>Path of a Fashion-MNIST file, e.g. "t10k-images-idx3-ubyte.gz".</summary>
    public static string FashionMnist(string file)
    {
        string path = Path.Combine(FashionMnistDirectory, file);
        return File.Exists(path) ? path : throw new FileNotFoundException($"bundled test data '{path}' is missing.", path);
    }

    /// <summary>Path of a bundled photograph, e.g. "astronaut.png".</summary>
    public static string SkimagePhoto(string file) => SampleData.Image(file);
}
