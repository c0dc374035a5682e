namespace Svg.ML.Data;

/// <summary>
/// The small, freely licensed data bundled with the Svg.ML repository (<c>data/</c>: a Fashion-MNIST subset and a few
/// CC0 / public-domain photographs and textures; licences in <c>data/README.md</c>), so tests, samples and notebooks
/// run offline on a machine with only the .NET SDK.
/// </summary>
public static class SampleData
{
    /// <summary>Environment variable that names the data folder explicitly.</summary>
    public const string EnvironmentVariable = "SVGML_DATA";

    const string Marker = "fashion-mnist";

    /// <summary>
    /// The data folder: <c>$SVGML_DATA</c> when set, else the first <c>data/</c> folder holding <c>fashion-mnist/</c>
    /// found beside the application or in a folder above it, then the same from the current directory; null when
    /// there is none.
    /// </summary>
    public static string? Root => FindRoot();

    /// <summary>The bundled Fashion-MNIST subset (the first 6 000 training and 2 000 test images).</summary>
    public static string FashionMnistDirectory => Path.Combine(RequireRoot(), Marker);

    /// <summary>Path of a bundled photograph or texture (<c>data/images/</c>), e.g. "coffee.png" or "brick.png".</summary>
    public static string Image(string fileName)
    {
        string path = Path.Combine(RequireRoot(), "images", fileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"bundled image '{fileName}' is not in {Path.GetDirectoryName(path)} (see data/README.md for the list).", path);
        return path;
    }

    static string RequireRoot() => FindRoot() ?? throw new DirectoryNotFoundException(
        $"Svg.ML's bundled data folder was not found: set {EnvironmentVariable} to the repository's data/ folder " +
        $"(searched above {AppContext.BaseDirectory} and {Environment.CurrentDirectory}).");

    static string? FindRoot()
    {
        string? explicitRoot = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(explicitRoot))
            return Directory.Exists(Path.Combine(explicitRoot, Marker)) ? Path.GetFullPath(explicitRoot)
                : throw new DirectoryNotFoundException($"{EnvironmentVariable}={explicitRoot} holds no {Marker}/ folder.");
        foreach (string start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "data");
                if (Directory.Exists(Path.Combine(candidate, Marker))) return candidate;
            }
        return null;
    }
}
