using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Svg.ML.NotebookRunner;

/// <summary>
/// Svg.ML packed from the repository's sources into a temporary local NuGet source under a version of its own, so
/// that a notebook run consumes the code as it is now (the NuGet cache keeps the first copy of a version it sees, so
/// re-packing under the notebooks' fixed version would run stale code). <see cref="Rewrite"/> points a notebook
/// cell's <c>#i "nuget: …"</c> source and <c>#r "nuget: Svg.ML, …"</c> version at it. Dispose removes the folder and
/// the version's copy in the NuGet cache.
/// </summary>
public sealed partial class LocalPackage : IDisposable
{
    public string Source { get; }
    public string Version { get; }

    LocalPackage(string source, string version) { Source = source; Version = version; }

    /// <summary>Runs <c>dotnet pack</c> on <c>src/Svg.ML</c> of <paramref name="repositoryRoot"/> (Release).</summary>
    public static LocalPackage Pack(string repositoryRoot, Action<string>? log = null)
    {
        string version = $"0.1.0-local.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        string source = Path.Combine(Path.GetTempPath(), $"svgml-nuget-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(source);
        string project = Path.Combine(repositoryRoot, "src", "Svg.ML", "Svg.ML.csproj");
        // Reuse the Release build when there is one (the test suite's build), else build it.
        bool built = File.Exists(Path.Combine(repositoryRoot, "src", "Svg.ML", "bin", "Release", "net10.0", "Svg.ML.dll"));
        var psi = new ProcessStartInfo("dotnet", ["pack", project, "-c", "Release", "-o", source, $"-p:Version={version}",
                                                  "-p:IncludeSymbols=false", "--nologo", "-v:q"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        if (built) psi.ArgumentList.Add("--no-build");
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"dotnet pack {project} failed ({process.ExitCode}):\n{stdout.Result}\n{stderr.Result}");
        log?.Invoke($"packed Svg.ML {version} into {source} in {clock.Elapsed.TotalSeconds:F1} s");
        return new LocalPackage(source, version);
    }

    string? _notebookSource, _notebookVersion;

    /// <summary>The cell's code with its local source and Svg.ML version replaced by this package's.</summary>
    public string Rewrite(string code)
    {
        code = SourceDirective().Replace(code, m => { _notebookSource = m.Groups[1].Value; return $"#i \"nuget: {Source}\""; });
        return SvgMlReference().Replace(code, m => { _notebookVersion = m.Groups[1].Value; return $"#r \"nuget: Svg.ML, {Version}\""; });
    }

    /// <summary>Output text with this package's source and version put back as the notebook names them (the package
    /// manager echoes both), so the saved outputs show what a user's run shows.</summary>
    public string Unrewrite(string text)
    {
        if (_notebookSource is not null) text = text.Replace(Source, _notebookSource);
        if (_notebookVersion is not null) text = text.Replace(Version, _notebookVersion);
        return text;
    }

    [GeneratedRegex(@"#i\s+""nuget:\s*([^""]*)""")]
    private static partial Regex SourceDirective();

    [GeneratedRegex(@"#r\s+""nuget:\s*Svg\.ML\s*,\s*([^""]*)""")]
    private static partial Regex SvgMlReference();

    public void Dispose()
    {
        TryDelete(Source);
        string? cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(cache))
            cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        TryDelete(Path.Combine(cache, "svg.ml", Version.ToLowerInvariant()));
    }

    static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
