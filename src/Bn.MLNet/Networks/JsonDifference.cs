using System.Globalization;
using System.Text.Json.Nodes;

namespace Bn.MLNet.Networks;

/// <summary>The first difference between two JSON documents, as a path (<c>convStages[1].channels</c>) and both values.</summary>
internal static class JsonDifference
{
    /// <summary>The first path whose value differs (objects in the order of their properties), or null when the documents are equal.</summary>
    public static (string Path, string? Left, string? Right)? First(string left, string right)
    {
        var a = Flatten(JsonNode.Parse(left));
        var b = Flatten(JsonNode.Parse(right));
        foreach (string key in a.Keys.Concat(b.Keys).Distinct())
        {
            string? x = a.GetValueOrDefault(key), y = b.GetValueOrDefault(key);
            if (x != y)
                return (key, x, y);
        }

        return null;
    }

    private static Dictionary<string, string?> Flatten(JsonNode? node, string path = "", Dictionary<string, string?>? into = null)
    {
        into ??= new Dictionary<string, string?>();
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o)
                    Flatten(value, path.Length == 0 ? key : $"{path}.{key}", into);
                break;
            case JsonArray a:
                into[path + ".length"] = a.Count.ToString(CultureInfo.InvariantCulture);
                for (int i = 0; i < a.Count; i++)
                    Flatten(a[i], $"{path}[{i}]", into);
                break;
            default:
                into[path] = node?.ToJsonString();
                break;
        }

        return into;
    }
}
