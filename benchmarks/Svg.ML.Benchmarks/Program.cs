// Svg.ML benchmarks: one JSON line per figure on stdout (progress on stderr).
//   dotnet run -c Release --project benchmarks/Svg.ML.Benchmarks -- [--threads N] [--only NAME[,NAME]] [benchmark options]
// Each benchmark lives in its own file and registers itself in Benchmarks.All below.
using System.Text.Json.Nodes;
using Svg.ML.Benchmarks;
using Svg.ML.Runtime;
using TorchSharp;

var options = BenchmarkOptions.Parse(args);
TorchRuntime.EnsureInitialized();
if (options.Threads is int t) torch.set_num_threads(t);
Console.Error.WriteLine($"Svg.ML benchmarks: TorchSharp {typeof(torch).Assembly.GetName().Version}, {torch.get_num_threads()} thread(s)");
foreach (var b in Benchmarks.All)
{
    if (options.Only is { } only && !only.Contains(b.Name)) continue;
    foreach (var figure in b.Run(options))
    {
        figure["benchmark"] = b.Name;
        figure["threads"] = torch.get_num_threads();
        Console.WriteLine(figure.ToJsonString());
    }
}

namespace Svg.ML.Benchmarks
{
    /// <summary>A benchmark: yields one JSON object per figure.</summary>
    public interface IBenchmark
    {
        string Name { get; }
        IEnumerable<JsonObject> Run(BenchmarkOptions options);
    }

    /// <summary>The registry: add a benchmark here.</summary>
    public static class Benchmarks
    {
        public static readonly IReadOnlyList<IBenchmark> All = new IBenchmark[]
        {
            new FeaturizerOverheadBenchmark(),
        };
    }

    /// <summary>Common options (<c>--threads</c>, <c>--only</c>) plus free <c>--key value</c> pairs for the benchmarks.</summary>
    public sealed class BenchmarkOptions
    {
        public int? Threads { get; private init; }
        public HashSet<string>? Only { get; private init; }
        readonly Dictionary<string, string> _values = new();

        public string? Get(string key) => _values.GetValueOrDefault(key);
        public int Int(string key, int fallback) => _values.TryGetValue(key, out var v) ? int.Parse(v) : fallback;

        public static BenchmarkOptions Parse(string[] args)
        {
            var values = new Dictionary<string, string>();
            for (int i = 0; i < args.Length; i++)
            {
                if (!args[i].StartsWith("--") || i + 1 >= args.Length) throw new ArgumentException($"expected --key value, got '{args[i]}'");
                values[args[i][2..]] = args[++i];
            }
            var o = new BenchmarkOptions
            {
                Threads = values.TryGetValue("threads", out var t) ? int.Parse(t) : null,
                Only = values.TryGetValue("only", out var only) ? only.Split(',').ToHashSet() : null,
            };
            foreach (var (k, v) in values) o._values[k] = v;
            return o;
        }
    }
}
