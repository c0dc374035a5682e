using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace Svg.ML.Notebooks.Tests;

/// <summary>
/// Every notebook in notebooks/ runs headless, cell by cell, at the small sizes (SVGML_NOTEBOOK_SMALL=1), consuming
/// Svg.ML as a package packed from this checkout. The runner is its own process: the notebook kernel loads TorchSharp
/// from the NuGet cache as a notebook front end does, with the environment it needs (tools/NotebookRunner/NativeEnvironment.cs),
/// and this test host stays free of it. A failing cell fails the test with the notebook's name, the cell's index and the error.
/// </summary>
public sealed class NotebookTests(ITestOutputHelper output)
{
    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Svg.ML.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("no Svg.ML.sln above " + AppContext.BaseDirectory);
    }

    [Fact]
    public async Task EveryNotebook_RunsHeadless_AtSmallSize()
    {
        string root = RepositoryRoot();
        var notebooks = Directory.GetFiles(Path.Combine(root, "notebooks"), "*.ipynb").Order().ToList();
        Assert.NotEmpty(notebooks);
        // bin/<Configuration>/net10.0 of this project → the runner built in the same configuration.
        var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string runner = Path.Combine(root, "tools", "NotebookRunner", "bin", bin.Parent!.Name, bin.Name, "NotebookRunner.dll");
        Assert.True(File.Exists(runner), $"the notebook runner is not built: {runner}");

        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
        foreach (string a in new[] { runner, "--small", "--no-write" }.Concat(notebooks)) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stderrTask = process.StandardError.ReadToEndAsync();
        var stdoutTask = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(15));
        bool exited = true;
        try { await process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { exited = false; process.Kill(entireProcessTree: true); }
        string stdout = await stdoutTask, stderr = await stderrTask;
        output.WriteLine(stdout);
        output.WriteLine(stderr);
        Assert.True(exited, "the notebooks did not finish within 15 minutes:\n" + stdout);
        Assert.True(process.ExitCode == 0, $"a notebook cell failed (runner exit code {process.ExitCode}):\n{stderr}\n{stdout}");
        foreach (string nb in notebooks)
            Assert.Contains($"{Path.GetFileName(nb)}: every cell ran", stdout);
    }
}
