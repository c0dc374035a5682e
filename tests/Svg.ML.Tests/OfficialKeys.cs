using System.Text.Json.Nodes;
using Svg.ML.Tests.Parity;
using TorchSharp;
using Xunit;

namespace Svg.ML.Tests;

/// <summary>
/// The official state-dict keys and shapes of the released architectures (<c>Golden/keys_official.json</c>, written by
/// the official constructors), and the comparison the key tests share.
/// </summary>
static class OfficialKeys
{
    public static readonly JsonObject Json =
        JsonNode.Parse(File.ReadAllText(Path.Combine(GoldenCase.Folder, "keys_official.json")))!.AsObject();

    /// <summary>[key, shape] pairs of a JSON array → key → shape.</summary>
    public static Dictionary<string, long[]> Shapes(JsonArray keys) =>
        keys.ToDictionary(e => e![0]!.GetValue<string>(), e => e![1]!.AsArray().Select(d => d!.GetValue<long>()).ToArray());

    /// <summary>The module's state-dict key → shape.</summary>
    public static Dictionary<string, long[]> Shapes(torch.nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);

    /// <summary>Same keys, same shapes; the failure lists every missing, unexpected and mis-shaped key.</summary>
    public static void AssertSameKeys(Dictionary<string, long[]> expected, Dictionary<string, long[]> actual, string what)
    {
        var missing = expected.Keys.Except(actual.Keys).Order().ToList();
        var extra = actual.Keys.Except(expected.Keys).Order().ToList();
        var shapes = expected.Keys.Intersect(actual.Keys).Where(k => !expected[k].SequenceEqual(actual[k]))
            .Select(k => $"{k}: [{string.Join(",", actual[k])}] vs official [{string.Join(",", expected[k])}]").ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0 && shapes.Count == 0,
            $"{what}:\nmissing: {string.Join(", ", missing)}\nunexpected: {string.Join(", ", extra)}\nshapes: {string.Join("; ", shapes)}");
    }

    public static void AssertSameKeys(Dictionary<string, long[]> expected, torch.nn.Module module, string what) =>
        AssertSameKeys(expected, Shapes(module), what);
}
