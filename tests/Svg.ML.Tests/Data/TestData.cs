namespace Svg.ML.Tests.Data;

/// <summary>
/// Real data shipped by Debian packages (CI installs them: <c>apt-get install dataset-fashion-mnist python3-skimage</c>).
/// A missing file fails the test with the package to install.
/// </summary>
public static class TestData
{
    /// <summary>Folder of Debian's <c>dataset-fashion-mnist</c>.</summary>
    public const string FashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>Folder of the sample images of Debian's <c>python3-skimage</c>.</summary>
    public const string SkimageDataDirectory = "/usr/lib/python3/dist-packages/skimage/data";

    /// <summary>Path of a Fashion-MNIST file, e.g. "t10k-images-idx3-ubyte.gz".</summary>
    public static string FashionMnist(string file) => Require(Path.Combine(FashionMnistDirectory, file), "dataset-fashion-mnist");

    /// <summary>Path of a scikit-image sample photograph, e.g. "astronaut.png".</summary>
    public static string SkimagePhoto(string file) => Require(Path.Combine(SkimageDataDirectory, file), "python3-skimage");

    static string Require(string path, string aptPackage)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"Test data '{path}' is missing: install the Debian package with `apt-get install {aptPackage}` (CI installs it).", path);
        return path;
    }
}
