// Re-executes Svg.ML notebooks and writes their outputs back into the .ipynb files (notebooks/README.md):
//   dotnet run -c Release --project tools/NotebookRunner -- [--small] [--no-write] notebooks/*.ipynb
// Svg.ML is packed from this repository into a temporary local source first, so the notebooks run the current code
// (the Release build of src/Svg.ML must exist: dotnet build src/Svg.ML -c Release).
// --small sets SVGML_NOTEBOOK_SMALL=1 (the sizes the headless test uses); --no-write only checks that every cell runs.
// Exit code 0 when every cell of every notebook ran; otherwise 1, with "FAILED: <notebook>, cell <i>: <error>" on stderr.
using Svg.ML.NotebookRunner;

bool small = args.Contains("--small"), write = !args.Contains("--no-write");
var notebooks = args.Where(a => !a.StartsWith("--")).Select(Path.GetFullPath).ToList();
if (notebooks.Count == 0 || args.Contains("--help"))
{
    Console.WriteLine("usage: NotebookRunner [--small] [--no-write] NOTEBOOK.ipynb ...");
    return notebooks.Count == 0 && !args.Contains("--help") ? 2 : 0;
}
if (NativeEnvironment.RelaunchNeeded(out var relaunch)) return await NativeEnvironment.RunChildAsync(relaunch, args);
if (small) Environment.SetEnvironmentVariable("SVGML_NOTEBOOK_SMALL", "1");

string root = RepositoryRoot(Path.GetDirectoryName(notebooks[0])!);
using var package = LocalPackage.Pack(root, Console.WriteLine);
int failures = 0;
foreach (string path in notebooks)
{
    var document = NotebookExecutor.Read(path);
    // As in the notebook front ends, the notebook's folder is the current directory while it runs.
    Environment.CurrentDirectory = Path.GetDirectoryName(path)!;
    var clock = System.Diagnostics.Stopwatch.StartNew();
    var run = await NotebookExecutor.RunAsync(document, Path.GetFileName(path), package.Rewrite, Console.WriteLine);
    if (run.Failure is not null)
    {
        failures++;
        Console.Error.WriteLine($"FAILED: {run.Failure}");
        continue;
    }
    Console.WriteLine($"{Path.GetFileName(path)}: every cell ran ({clock.Elapsed.TotalSeconds:F0} s)");
    if (write)
    {
        NotebookExecutor.WriteOutputs(run.Document, path, package.Unrewrite);
        Console.WriteLine($"wrote the outputs into {path}");
    }
}
return failures == 0 ? 0 : 1;

static string RepositoryRoot(string start)
{
    for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "Svg.ML.sln"))) return dir.FullName;
    throw new DirectoryNotFoundException($"no Svg.ML.sln above {start}");
}
