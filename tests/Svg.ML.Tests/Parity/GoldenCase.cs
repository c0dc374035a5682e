using System.Text.Json.Nodes;
using Svg.ML.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Parity;

/// <summary>
/// One golden case: <c>&lt;name&gt;.safetensors</c> + <c>&lt;name&gt;.json</c>, produced by the official PyTorch code.
/// <see cref="Weights"/> holds the <c>w.*</c> tensors (prefix removed), following <c>weights_from</c> (the referenced
/// file's weights first, the case's own <c>w.*</c> override them); <see cref="Inputs"/> the <c>in.*</c> and
/// <see cref="Expected"/> the <c>out.*</c> tensors.
/// </summary>
public sealed class GoldenCase
{
    public string Name { get; }
    public string Kind { get; }
    public JsonObject Sidecar { get; }
    public JsonObject Config => Sidecar["config"]!.AsObject();
    public Dictionary<string, Tensor> Weights { get; } = new();
    public Dictionary<string, Tensor> Inputs { get; } = new();
    public Dictionary<string, Tensor> Expected { get; } = new();

    public GoldenCase(string folder, string name)
    {
        Name = name;
        Sidecar = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, name + ".json")))!.AsObject();
        Kind = Sidecar["kind"]!.GetValue<string>();
        var own = SafeTensors.Load(Path.Combine(folder, name + ".safetensors")).Tensors;
        string? from = Sidecar["weights_from"]?.GetValue<string>();
        if (!string.IsNullOrEmpty(from))
            foreach (var (k, v) in SafeTensors.Load(Path.Combine(folder, from)).Tensors)
                if (k.StartsWith("w.")) Weights[k[2..]] = v;
        foreach (var (k, v) in own)
        {
            if (k.StartsWith("w.")) Weights[k[2..]] = v;
            else if (k.StartsWith("in.")) Inputs[k[3..]] = v;
            else if (k.StartsWith("out.")) Expected[k[4..]] = v;
        }
    }

    /// <summary>The golden folder: <c>SVG_GOLDEN_DIR</c> when set, else the repository's <c>tests/Svg.ML.Tests/Golden</c>.</summary>
    public static string Folder
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("SVG_GOLDEN_DIR");
            if (!string.IsNullOrEmpty(env)) return Path.GetFullPath(env);
            return Path.Combine(RepoPaths.TestProjectDir, "Golden");
        }
    }

    public static IEnumerable<string> CaseNames(string folder) =>
        Directory.GetFiles(folder, "*.safetensors").Select(Path.GetFileNameWithoutExtension)
                 .Where(n => File.Exists(Path.Combine(folder, n + ".json"))).Order()!;
}

/// <summary>Runs the C# port for one golden kind; returns outputs under the golden's <c>out.*</c> names (without "out.").</summary>
public interface IGoldenKind
{
    string Kind { get; }
    Dictionary<string, Tensor> Run(GoldenCase golden);

    /// <summary>Largest max-abs error allowed against the golden outputs.</summary>
    double Tolerance => ParityTests.Tolerance;
}

static class RepoPaths
{
    /// <summary>The folder holding Svg.ML.Tests.csproj, found by walking up from the test binaries.</summary>
    public static string TestProjectDir
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Svg.ML.Tests.csproj"))) return d.FullName;
            throw new DirectoryNotFoundException("Svg.ML.Tests.csproj not found above " + AppContext.BaseDirectory);
        }
    }

    public static string RepoRoot => Path.GetFullPath(Path.Combine(TestProjectDir, "..", ".."));
}
