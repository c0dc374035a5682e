using System.Security.Cryptography;
using System.Text;

namespace Svg.ML.Data;

/// <summary>Identities of data on disk, for feature-cache keys: a change of any file changes the identity.</summary>
public static class DataIdentity
{
    /// <summary>
    /// SHA-256 (hex) over each file's path (relative to <paramref name="root"/> when given, else absolute), size and
    /// last-write time (UTC ticks), in the given order; with <paramref name="hashContent"/>, over its bytes instead of the time.
    /// </summary>
    public static string OfFiles(IEnumerable<string> paths, string? root = null, bool hashContent = false)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var path in paths)
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new FileNotFoundException($"Data file not found: {path}", path);
            string name = root is null ? info.FullName : Path.GetRelativePath(root, info.FullName);
            string stamp;
            if (hashContent)
            {
                using var stream = File.OpenRead(path);
                stamp = Convert.ToHexString(SHA256.HashData(stream));
            }
            else stamp = info.LastWriteTimeUtc.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture);
            string line = $"{name}\t{info.Length}\t{stamp}\n";
            sha.AppendData(Encoding.UTF8.GetBytes(line));
        }
        return Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
    }

    /// <summary>SHA-256 (hex) of a string.</summary>
    public static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))).ToLowerInvariant();
}
