using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Samples.Datasets;

/// <summary>
/// The scikit-learn "diabetes" regression dataset (Efron, Hastie, Johnstone and Tibshirani 2004, "Least Angle
/// Regression"): 442 patients, 10 baseline variables in their <b>raw, unscaled</b> form (age in years, sex coded 1/2,
/// body mass index, average blood pressure and six blood serum measurements, on very different scales) and a
/// quantitative measure of disease progression one year after baseline as the target. Bundled under
/// <c>datasets/diabetes</c> as the two gz files of Debian's <c>python3-sklearn</c> 1.2.1+dfsg-1, copied unchanged
/// (BSD-3-Clause; see <c>datasets/README.md</c>).
/// </summary>
/// <remarks>
/// <see cref="Read"/> verifies the SHA-256 of each file's decompressed content against <see cref="FeaturesSha256"/> and
/// <see cref="TargetsSha256"/>, so a corrupted or different file is refused rather than silently loaded.
/// </remarks>
public static class Diabetes
{
    /// <summary>The bundled folder, relative to the repository root.</summary>
    public const string RelativeDataDirectory = "datasets/diabetes";

    /// <summary>The features file: 442 lines of 10 space-separated raw values, in <see cref="FeatureNames"/> order.</summary>
    public const string FeaturesFileName = "diabetes_data_raw.csv.gz";

    /// <summary>The targets file: 442 lines of one value each (written as e.g. <c>1.510000000000000000e+02</c>).</summary>
    public const string TargetsFileName = "diabetes_target.csv.gz";

    /// <summary>SHA-256 (lower-case hex) of the decompressed content of <see cref="FeaturesFileName"/>.</summary>
    public const string FeaturesSha256 = "ec2683754c379fdffc39f53922c475eff67e2fb9c94c7c27207b7c4371d51726";

    /// <summary>SHA-256 (lower-case hex) of the decompressed content of <see cref="TargetsFileName"/>.</summary>
    public const string TargetsSha256 = "244713a551f62a291a354212d8a048adec6cb1244b2bc44e66a0698f5006d26d";

    /// <summary>Number of features per row: 10.</summary>
    public const int FeatureCount = 10;

    /// <summary>Number of rows (patients): 442.</summary>
    public const int RowCount = 442;

    /// <summary>
    /// <see cref="Split"/> puts the row with 0-based index <c>i</c> in the test set when <c>i % SplitModulus == 0</c>.
    /// </summary>
    public const int SplitModulus = 5;

    /// <summary>Rows in the test set of <see cref="Split"/>: indices 0, 5, …, 440, i.e. 89.</summary>
    public const int TestRowCount = ((RowCount - 1) / SplitModulus) + 1;

    /// <summary>Rows in the training set of <see cref="Split"/>: 353.</summary>
    public const int TrainRowCount = RowCount - TestRowCount;

    /// <summary>Name of the 10-long <see cref="float"/> vector column in the loaded <see cref="IDataView"/>.</summary>
    public const string FeaturesColumnName = "Features";

    /// <summary>Name of the <see cref="float"/> target column in the loaded <see cref="IDataView"/>.</summary>
    public const string LabelColumnName = "Label";

    private static readonly string[] Names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"];

    /// <summary>
    /// The 10 feature names in file order, as scikit-learn names them: age, sex, bmi, bp, s1 … s6
    /// (s1 = total serum cholesterol, s2 = LDL, s3 = HDL, s4 = total cholesterol / HDL, s5 = possibly log of serum
    /// triglycerides, s6 = blood sugar). A new array on each call.
    /// </summary>
    public static string[] FeatureNames => (string[])Names.Clone();

    /// <summary>
    /// Finds the folder holding the diabetes files: the first <see cref="RelativeDataDirectory"/> holding
    /// <see cref="FeaturesFileName"/>, walking up from <see cref="AppContext.BaseDirectory"/> and then from the current directory.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">Nothing was found; the message lists every path tried.</exception>
    public static string FindDataDirectory()
    {
        var tried = new List<string>();
        foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "datasets", "diabetes");
                if (tried.Contains(candidate))
                {
                    continue;
                }

                tried.Add(candidate);
                if (File.Exists(Path.Combine(candidate, FeaturesFileName)))
                {
                    return candidate;
                }
            }
        }

        throw new DirectoryNotFoundException(
            $"The diabetes dataset was not found: no '{RelativeDataDirectory}' folder holding {FeaturesFileName} exists above "
            + "the application or current directory. Tried: " + string.Join(", ", tried) + ". Pass the folder explicitly.");
    }

    /// <summary>
    /// Reads both files: the raw, unscaled features (one 10-long array per row, in <see cref="FeatureNames"/> order) and
    /// the targets, both in file order.
    /// </summary>
    /// <param name="directory">The folder holding the two gz files, or null for <see cref="FindDataDirectory"/>.</param>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">A file is not valid gzip, its decompressed SHA-256 differs from
    /// <see cref="FeaturesSha256"/> / <see cref="TargetsSha256"/>, or its row or column count or a value is wrong;
    /// the message names the file.</exception>
    public static (float[][] Features, float[] Targets) Read(string? directory = null)
    {
        string dir = directory ?? FindDataDirectory();
        string featuresPath = Path.Combine(dir, FeaturesFileName);
        string targetsPath = Path.Combine(dir, TargetsFileName);
        float[][] features = ParseRows(featuresPath, ReadVerified(featuresPath, FeaturesSha256), FeatureCount);
        float[][] targets = ParseRows(targetsPath, ReadVerified(targetsPath, TargetsSha256), 1);
        return (features, Array.ConvertAll(targets, t => t[0]));
    }

    /// <summary>
    /// Loads all 442 rows, in file order, as an in-memory <see cref="IDataView"/>: <c>Features</c> is a known-size vector of
    /// 10 <see cref="float"/> raw values with <c>SlotNames</c> = <see cref="FeatureNames"/>, and <c>Label</c> is the
    /// <see cref="float"/> target.
    /// </summary>
    /// <param name="ml">The ML.NET context.</param>
    /// <param name="directory">The folder, or null for <see cref="FindDataDirectory"/>.</param>
    /// <exception cref="InvalidDataException">See <see cref="Read"/>.</exception>
    public static IDataView Load(MLContext ml, string? directory = null)
    {
        ArgumentNullException.ThrowIfNull(ml);
        var (features, targets) = Read(directory);
        return ToDataView(ml, Enumerable.Range(0, features.Length), features, targets);
    }

    /// <summary>
    /// A fixed, deterministic train/test split (no random numbers): the row with 0-based file index <c>i</c> goes to the
    /// test set when <c>i % 5 == 0</c> (see <see cref="IsTestRow"/>), otherwise to the training set; 353 training rows and
    /// 89 test rows, each in file order, with the schema of <see cref="Load"/>.
    /// </summary>
    /// <param name="ml">The ML.NET context.</param>
    /// <param name="directory">The folder, or null for <see cref="FindDataDirectory"/>.</param>
    /// <exception cref="InvalidDataException">See <see cref="Read"/>.</exception>
    public static (IDataView Train, IDataView Test) Split(MLContext ml, string? directory = null)
    {
        ArgumentNullException.ThrowIfNull(ml);
        var (features, targets) = Read(directory);
        var all = Enumerable.Range(0, features.Length);
        return (ToDataView(ml, all.Where(i => !IsTestRow(i)), features, targets),
            ToDataView(ml, all.Where(IsTestRow), features, targets));
    }

    /// <summary>Whether <see cref="Split"/> puts the row with 0-based file index <paramref name="index"/> in the test set.</summary>
    public static bool IsTestRow(int index) => index % SplitModulus == 0;

    private static IDataView ToDataView(MLContext ml, IEnumerable<int> indices, float[][] features, float[] targets)
    {
        var rows = indices.Select(i => new Row { Features = (float[])features[i].Clone(), Label = targets[i] }).ToList();
        var schema = SchemaDefinition.Create(typeof(Row));
        var column = schema[nameof(Row.Features)];
        column.ColumnType = new VectorDataViewType(NumberDataViewType.Single, FeatureCount);
        var slotNames = new VBuffer<ReadOnlyMemory<char>>(FeatureCount, Array.ConvertAll(Names, n => n.AsMemory()));
        column.AddAnnotation("SlotNames", slotNames, new VectorDataViewType(TextDataViewType.Instance, FeatureCount));
        return ml.Data.LoadFromEnumerable(rows, schema);
    }

    private static byte[] ReadVerified(string path, string expectedSha256)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The diabetes file '{path}' does not exist.", path);
        }

        byte[] content;
        try
        {
            using var file = File.OpenRead(path);
            using var zip = new GZipStream(file, CompressionMode.Decompress);
            using var buffer = new MemoryStream();
            zip.CopyTo(buffer);
            content = buffer.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid gzip file: {e.Message}", e);
        }

        string actual = Convert.ToHexStringLower(SHA256.HashData(content));
        if (actual != expectedSha256)
        {
            throw new InvalidDataException(
                $"'{path}' decompresses to content with SHA-256 {actual}, but the bundled scikit-learn file's is {expectedSha256}; "
                + "the file is corrupt or not the expected one (see datasets/README.md).");
        }

        return content;
    }

    private static float[][] ParseRows(string path, byte[] content, int columns)
    {
        string[] lines = Encoding.ASCII.GetString(content)
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length != RowCount)
        {
            throw new InvalidDataException($"'{path}' has {lines.Length} rows; expected {RowCount}.");
        }

        var rows = new float[lines.Length][];
        for (int i = 0; i < lines.Length; i++)
        {
            string[] fields = lines[i].Split([' ', ',', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != columns)
            {
                throw new InvalidDataException($"'{path}' line {i + 1} has {fields.Length} values; expected {columns}.");
            }

            rows[i] = new float[columns];
            for (int j = 0; j < columns; j++)
            {
                if (!float.TryParse(fields[j], NumberStyles.Float, CultureInfo.InvariantCulture, out rows[i][j]))
                {
                    throw new InvalidDataException($"'{path}' line {i + 1} value {j + 1} ('{fields[j]}') is not a number.");
                }
            }
        }

        return rows;
    }

    private sealed class Row
    {
        [VectorType(FeatureCount)]
        public float[] Features { get; set; } = [];

        public float Label { get; set; }
    }
}
