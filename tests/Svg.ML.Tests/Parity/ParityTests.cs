using System.Reflection;
using Svg.ML.Checkpoints;
using Svg.ML.Runtime;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Parity;

/// <summary>
/// Data-driven parity with the official PyTorch code: every case in the golden folder is built from its sidecar
/// config, fed its inputs, and every <c>out.*</c> must be reproduced within <see cref="Tolerance"/> (max abs error;
/// a kind may state a different bound with its reason, see <see cref="IGoldenKind.Tolerance"/>). Integer outputs must
/// be exact.
/// With <c>SVG_PARITY_OUT</c> set, the computed outputs are written to <c>&lt;dir&gt;/&lt;case&gt;.safetensors</c>.
/// </summary>
[Trait("Category", "Parity")]
public class ParityTests(ITestOutputHelper output)
{
    public const double Tolerance = 1e-5;

    static readonly Dictionary<string, IGoldenKind> Kinds = typeof(ParityTests).Assembly.GetTypes()
        .Where(t => typeof(IGoldenKind).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
        .Select(t => (IGoldenKind)Activator.CreateInstance(t)!)
        .ToDictionary(k => k.Kind);

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var n in GoldenCase.CaseNames(GoldenCase.Folder)) data.Add(n);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Golden_case_matches_official_code(string caseName)
    {
        TorchRuntime.EnsureInitialized();
        var golden = new GoldenCase(GoldenCase.Folder, caseName);
        Assert.True(Kinds.TryGetValue(golden.Kind, out var kind), $"Case {caseName}: no port registered for kind '{golden.Kind}'.");
        Dictionary<string, Tensor> actual;
        using (no_grad()) actual = kind!.Run(golden);

        string? outDir = Environment.GetEnvironmentVariable("SVG_PARITY_OUT");
        if (!string.IsNullOrEmpty(outDir))
        {
            Directory.CreateDirectory(outDir);
            SafeTensors.Save(Path.Combine(outDir, caseName + ".safetensors"),
                actual.Select(kv => KeyValuePair.Create("out." + kv.Key, kv.Value)));
        }

        Assert.NotEmpty(golden.Expected);
        var failures = new List<string>();
        double worst = 0;
        foreach (var (name, expected) in golden.Expected)
        {
            if (!actual.TryGetValue(name, out var got)) { failures.Add($"{name}: not produced"); continue; }
            if (!got.shape.SequenceEqual(expected.shape))
            {
                failures.Add($"{name}: shape [{string.Join(",", got.shape)}] vs expected [{string.Join(",", expected.shape)}]");
                continue;
            }
            bool integral = !expected.is_floating_point();
            if (expected.numel() == 0) continue;
            using var exp64 = expected.to(float64);
            double err = (got.to(float64).cpu() - exp64).abs().max().item<double>();
            double allowed = kind.Tolerance;
            worst = Math.Max(worst, err);
            output.WriteLine($"{caseName} {name}: max abs error {err:E2} (allowed {allowed:E2})");
            if (integral ? err != 0 : !(err <= allowed))
                failures.Add($"{name}: max abs error {err:E3} > {(integral ? 0 : allowed):E2}");
        }
        output.WriteLine($"{caseName}: worst max abs error {worst:E2}");
        Assert.True(failures.Count == 0, $"Case {caseName}:\n" + string.Join("\n", failures));
    }
}
