using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Documents;
using Documents = Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Documents.Jupyter;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;
using Microsoft.DotNet.Interactive.PackageManagement;

namespace Svg.ML.NotebookRunner;

/// <summary>One failed cell: the notebook, the cell's index among all cells (0-based, markdown included) and the error.</summary>
public sealed record CellFailure(string Notebook, int CellIndex, string Code, string Error)
{
    public override string ToString() => $"{Notebook}, cell {CellIndex}: {Error}\n--- cell source ---\n{Code}";
}

/// <summary>The outcome of running a notebook: the document with fresh outputs, the first failure (null when none),
/// and how long each code cell took.</summary>
public sealed record NotebookRun(InteractiveDocument Document, CellFailure? Failure, IReadOnlyList<(int Cell, TimeSpan Time)> CellTimes);

/// <summary>
/// Executes a .NET Interactive notebook (.ipynb, C# cells) in order in an in-process <see cref="CompositeKernel"/> with
/// the C# kernel and the <c>#r "nuget:"</c> package manager, collecting each cell's outputs as Jupyter does
/// (display data, return values, stdout/stderr, errors). Stops at the first failing cell.
/// </summary>
public static class NotebookExecutor
{
    /// <summary>The kernels a Svg.ML notebook may name (C# code, markdown text).</summary>
    public static KernelInfoCollection KernelInfos()
    {
        var infos = new KernelInfoCollection { new Documents.KernelInfo("csharp", "C#", new[] { "c#", "C#" }), new Documents.KernelInfo("markdown", "Markdown", new[] { "md" }) };
        infos.DefaultKernelName = "csharp";
        return infos;
    }

    /// <summary>Reads a .ipynb file.</summary>
    public static InteractiveDocument Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Notebook.Read(stream, KernelInfos());
    }

    /// <summary>
    /// Writes the outputs and execution counts of <paramref name="document"/> (read from <paramref name="path"/>) back
    /// into that .ipynb file, leaving everything else in it (sources, metadata, formatting) as it was.
    /// <paramref name="filter"/> may change the output text (e.g. <see cref="LocalPackage.Unrewrite"/>).
    /// </summary>
    public static void WriteOutputs(InteractiveDocument document, string path, Func<string, string>? filter = null)
    {
        filter ??= t => t;
        var root = JsonNode.Parse(File.ReadAllText(path))!;
        var cells = root["cells"]!.AsArray();
        if (cells.Count != document.Elements.Count)
            throw new InvalidDataException($"{path}: {cells.Count} cells in the file, {document.Elements.Count} parsed.");
        for (int i = 0; i < cells.Count; i++)
        {
            if ((string?)cells[i]!["cell_type"] != "code") continue;
            var element = document.Elements[i];
            cells[i]!["execution_count"] = element.ExecutionOrder > 0 ? element.ExecutionOrder : null;
            var outputs = new JsonArray();
            foreach (var output in element.Outputs) outputs.Add(ToJson(output, element.ExecutionOrder, filter));
            cells[i]!["outputs"] = outputs;
        }
        var options = new JsonSerializerOptions { WriteIndented = true, IndentSize = 1, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.WriteAllText(path, root.ToJsonString(options) + "\n", new UTF8Encoding(false));
    }

    // nbformat 4 output objects; text is stored as a list of lines, as Jupyter writes it.
    static JsonNode ToJson(InteractiveDocumentOutputElement output, int executionCount, Func<string, string> filter) => output switch
    {
        TextElement t => new JsonObject { ["name"] = t.Name, ["output_type"] = "stream", ["text"] = Lines(filter(t.Text)) },
        DisplayElement d => new JsonObject { ["data"] = MimeData(d.Data, filter), ["metadata"] = new JsonObject(), ["output_type"] = "display_data" },
        ReturnValueElement r => new JsonObject
        {
            ["data"] = MimeData(r.Data, filter), ["execution_count"] = executionCount, ["metadata"] = new JsonObject(), ["output_type"] = "execute_result",
        },
        ErrorElement e => new JsonObject
        {
            ["ename"] = e.ErrorName, ["evalue"] = filter(e.ErrorValue), ["output_type"] = "error",
            ["traceback"] = new JsonArray(e.StackTrace.Select(l => (JsonNode?)JsonValue.Create(filter(l))).ToArray()),
        },
        _ => throw new NotSupportedException(output.GetType().Name),
    };

    static JsonObject MimeData(IDictionary<string, object> data, Func<string, string> filter)
    {
        var o = new JsonObject();
        foreach (var (mime, value) in data)
            o[mime] = mime.EndsWith("json", StringComparison.Ordinal) ? JsonNode.Parse(filter(value.ToString()!)) : Lines(filter(value.ToString()!));
        return o;
    }

    static JsonArray Lines(string text)
    {
        var lines = new JsonArray();
        int start = 0;
        for (int i = 0; i < text.Length; i++)
            if (text[i] == '\n') { lines.Add(text[start..(i + 1)]); start = i + 1; }
        if (start < text.Length) lines.Add(text[start..]);
        return lines;
    }

    /// <summary>
    /// Runs every C# cell of <paramref name="document"/> in order; outputs replace the cells' old ones.
    /// <paramref name="rewrite"/> may change a cell's code before it runs (not what is stored), e.g. to point
    /// <c>#i "nuget:"</c> at a freshly packed source. <paramref name="log"/> receives one line per cell.
    /// </summary>
    public static async Task<NotebookRun> RunAsync(InteractiveDocument document, string notebookName,
        Func<string, string>? rewrite = null, Action<string>? log = null, CancellationToken cancellation = default)
    {
        using var kernel = CreateKernel();
        var times = new List<(int, TimeSpan)>();
        int executionCount = 0;
        for (int i = 0; i < document.Elements.Count; i++)
        {
            var cell = document.Elements[i];
            if (!IsCSharp(cell.KernelName)) continue;
            cell.Outputs.Clear();
            if (string.IsNullOrWhiteSpace(cell.Contents)) continue;
            cell.ExecutionOrder = ++executionCount;
            string code = rewrite is null ? cell.Contents : rewrite(cell.Contents);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var result = await kernel.SendAsync(new SubmitCode(code, "csharp"), cancellation);
            times.Add((i, clock.Elapsed));
            string? error = Collect(result.Events, cell.Outputs);
            log?.Invoke($"{notebookName} cell {i}: {(error is null ? "ok" : "FAILED")} in {clock.Elapsed.TotalSeconds:F1} s");
            if (error is not null) return new NotebookRun(document, new CellFailure(notebookName, i, cell.Contents, error), times);
        }
        return new NotebookRun(document, null, times);
    }

    static bool IsCSharp(string? kernelName) => kernelName is "csharp" or "c#" or "C#";

    static CompositeKernel CreateKernel()
    {
        // What the dotnet-interactive tool sets up for its C# kernel: helpers (display, HTML) and #r "nuget:".
        var csharp = new CSharpKernel()
            .UseKernelHelpers()
            .UseNugetDirective((k, refs) =>
            {
                k.AddAssemblyReferences(refs.SelectMany(r => r.AssemblyPaths));
                return Task.CompletedTask;
            }, forceRestore: false);
        var composite = new CompositeKernel { csharp };
        composite.DefaultKernelName = csharp.Name;
        return composite;
    }

    /// <summary>Turns kernel events into Jupyter outputs; returns the error text when the cell failed.</summary>
    static string? Collect(IEnumerable<KernelEvent> events, List<InteractiveDocumentOutputElement> outputs)
    {
        string? error = null;
        var byValueId = new Dictionary<string, int>();
        foreach (var e in events)
        {
            switch (e)
            {
                case ReturnValueProduced r:
                    var value = new ReturnValueElement();
                    foreach (var (mime, text) in Data(r.FormattedValues)) value.Data[mime] = text;
                    outputs.Add(value);
                    break;
                case DisplayedValueUpdated u when u.ValueId is not null && byValueId.TryGetValue(u.ValueId, out int at):
                    outputs[at] = new DisplayElement(Data(u.FormattedValues));
                    break;
                case DisplayedValueProduced d:
                    if (d.ValueId is not null) byValueId[d.ValueId] = outputs.Count;
                    outputs.Add(new DisplayElement(Data(d.FormattedValues)));
                    break;
                case StandardOutputValueProduced o:
                    AppendText(outputs, "stdout", Text(o.FormattedValues));
                    break;
                case StandardErrorValueProduced o:
                    AppendText(outputs, "stderr", Text(o.FormattedValues));
                    break;
                case ErrorProduced err:
                    error ??= err.Message;
                    outputs.Add(new ErrorElement("Error", err.Message, Array.Empty<string>()));
                    break;
                case CommandFailed f:
                    error ??= f.Message + (f.Exception is null ? "" : "\n" + f.Exception);
                    outputs.Add(new ErrorElement(f.Exception?.GetType().Name ?? "Error", f.Message,
                        (f.Exception?.StackTrace ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries)));
                    break;
            }
        }
        return error;
    }

    static Dictionary<string, object> Data(IEnumerable<FormattedValue> values) =>
        values.GroupBy(v => v.MimeType).ToDictionary(g => g.Key, g => (object)g.First().Value);

    static string Text(IEnumerable<FormattedValue> values) =>
        values.FirstOrDefault(v => v.MimeType == "text/plain")?.Value ?? values.FirstOrDefault()?.Value ?? "";

    // Consecutive writes to one stream form one output, as Jupyter shows them.
    static void AppendText(List<InteractiveDocumentOutputElement> outputs, string stream, string text)
    {
        if (outputs.Count > 0 && outputs[^1] is TextElement last && last.Name == stream)
            outputs[^1] = new TextElement(last.Text + text, stream);
        else
            outputs.Add(new TextElement(text, stream));
    }
}
