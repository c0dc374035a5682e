// Svg.ML benchmarks: one JSON line per figure on stdout (progress and the header on stderr).
//   dotnet run -c Release --project benchmarks/Svg.ML.Benchmarks -- [--threads N] [--only NAME[,NAME]] [--list] [benchmark options]
// --only takes benchmark names or figure names (a trailing * matches a prefix); --list prints them and exits.
// Each benchmark lives in its own file and registers itself in Benchmarks.All below. See benchmarks/README.md.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Svg.ML.Benchmarks;
using Svg.ML.Runtime;
using TorchSharp;

var options = BenchmarkOptions.Parse(args);
var JsonOutput = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };  // "S+", not "S\u002B"
if (options.List)
{
    foreach (var b in Benchmarks.All)
    {
        Console.WriteLine(b.Name);
        if (b is IListableBenchmark listable)
            foreach (var (name, description) in listable.List()) Console.WriteLine($"  {name,-36} {description}");
    }
    return;
}

TorchRuntime.EnsureInitialized();
if (options.Threads is int t) torch.set_num_threads(t);
Console.Error.WriteLine($"Svg.ML benchmarks {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC: " +
                        $"TorchSharp {typeof(torch).Assembly.GetName().Version}, {torch.get_num_threads()} thread(s), " +
                        $"{Environment.ProcessorCount} logical CPU(s), {RuntimeInformation.OSDescription}, .NET {Environment.Version}");
Console.Error.WriteLine($"CPU: {BenchmarkEnvironment.CpuModel() ?? "unknown"}; load average (1 min) {BenchmarkEnvironment.LoadAverageText() ?? "n/a"}");
Console.Error.WriteLine($"oneDNN convolution guard: {OneDnnConvolutionGuard.Status}");
foreach (var b in Benchmarks.All)
{
    if (options.Only is not null && !(b is IListableBenchmark l ? l.Selects(options) : options.Matches(b.Name))) continue;
    foreach (var figure in b.Run(options))
    {
        figure["benchmark"] = b.Name;
        figure["threads"] = torch.get_num_threads();
        Console.WriteLine(figure.ToJsonString(JsonOutput));
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

    /// <summary>A benchmark whose figures have names of their own (listed by <c>--list</c>, selectable by <c>--only</c>).</summary>
    public interface IListableBenchmark
    {
        /// <summary>Figure names and one-line descriptions, in run order.</summary>
        IEnumerable<(string Name, string Description)> List();

        /// <summary>Whether <c>--only</c> selects this benchmark or any of its figures.</summary>
        bool Selects(BenchmarkOptions options);
    }

    /// <summary>The registry: add a benchmark here.</summary>
    public static class Benchmarks
    {
        public static readonly IReadOnlyList<IBenchmark> All = new IBenchmark[]
        {
            new MatmulBenchmark(),
            new DinoV3ForwardBenchmark(),
            new DiTForwardBenchmark(),
            new DiTTrainStepBenchmark(),
            new LdmDecoderForwardBenchmark(),
            new DiTSamplingBenchmark(),
            new FeaturizerOverheadBenchmark(),
            new TargetsBenchmark(),
            new Bf16LossCurveBenchmark(),
        };
    }

    /// <summary>
    /// Common options (<c>--threads</c>, <c>--only</c>, the flag <c>--list</c>) plus free <c>--key value</c> pairs for the
    /// benchmarks.
    /// </summary>
    public sealed class BenchmarkOptions
    {
        static readonly HashSet<string> Flags = ["list"];

        public int? Threads { get; private init; }
        public HashSet<string>? Only { get; private init; }
        public bool List { get; private init; }
        readonly Dictionary<string, string> _values = new();

        public string? Get(string key) => _values.GetValueOrDefault(key);
        public int Int(string key, int fallback) => _values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        public double Double(string key, double fallback) =>
            _values.TryGetValue(key, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

        /// <summary>Whether <c>--only</c> names <paramref name="name"/> exactly or by a prefix pattern ending in <c>*</c>.</summary>
        public bool Matches(string name) =>
            Only is null || Only.Any(p => p.EndsWith('*') ? name.StartsWith(p[..^1], StringComparison.Ordinal) : p == name);

        public static BenchmarkOptions Parse(string[] args)
        {
            var values = new Dictionary<string, string>();
            bool list = false;
            for (int i = 0; i < args.Length; i++)
            {
                if (args[i].StartsWith("--") && Flags.Contains(args[i][2..])) { list = true; continue; }
                if (!args[i].StartsWith("--") || i + 1 >= args.Length) throw new ArgumentException($"expected --key value, got '{args[i]}'");
                values[args[i][2..]] = args[++i];
            }
            var o = new BenchmarkOptions
            {
                Threads = values.TryGetValue("threads", out var t) ? int.Parse(t, CultureInfo.InvariantCulture) : null,
                Only = values.TryGetValue("only", out var only) ? only.Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet() : null,
                List = list,
            };
            foreach (var (k, v) in values) o._values[k] = v;
            return o;
        }
    }
}
