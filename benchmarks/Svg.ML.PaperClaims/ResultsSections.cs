namespace Svg.ML.PaperClaims;

/// <summary>
/// Sections of docs/results.md owned by other benchmark programs, kept between
/// <c>&lt;!-- section:KEY --&gt;</c> and <c>&lt;!-- /section:KEY --&gt;</c> markers at the end of the file: each
/// program replaces its own section, and the claims report re-appends them all when it rewrites the file.
/// </summary>
public static class ResultsSections
{
    static string Begin(string key) => $"<!-- section:{key} -->";
    static string End(string key) => $"<!-- /section:{key} -->";

    /// <summary>All marked sections of <paramref name="markdown"/>, each from its begin to its end marker, or "".</summary>
    public static string Extract(string markdown) => string.Concat(
        System.Text.RegularExpressions.Regex.Matches(markdown, @"<!-- section:(\S+) -->[\s\S]*?<!-- /section:\1 -->\n?").Select(m => m.Value));

    /// <summary>Replaces (or appends) section <paramref name="key"/> of the file at <paramref name="path"/> with <paramref name="body"/>.</summary>
    public static void Replace(string path, string key, string body)
    {
        string text = File.Exists(path) ? File.ReadAllText(path) : "";
        string block = $"{Begin(key)}\n{body.TrimEnd()}\n{End(key)}\n";
        int start = text.IndexOf(Begin(key), StringComparison.Ordinal);
        int end = start < 0 ? -1 : text.IndexOf(End(key), start, StringComparison.Ordinal);
        if (start >= 0 && end >= 0)
        {
            int after = end + End(key).Length;
            if (after < text.Length && text[after] == '\n') after++;
            text = text[..start] + block + text[after..];
        }
        else text = text.TrimEnd() + (text.Length > 0 ? "\n\n" : "") + block;
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllText(path, text);
    }
}
