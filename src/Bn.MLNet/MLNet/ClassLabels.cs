using Bn.MLNet.Data;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet;

/// <summary>
/// The label's class count and key values (of any primitive type ML.NET uses for them), saved with the model and
/// reproduced as <c>KeyValues</c> on PredictedLabel and as <c>SlotNames</c> (text) on Score.
/// </summary>
internal sealed class ClassLabels
{
    // Binary type codes: stable, part of the model format.
    private static readonly (byte Code, Type Raw, PrimitiveDataViewType Type)[] Kinds =
    [
        (1, typeof(ReadOnlyMemory<char>), TextDataViewType.Instance),
        (2, typeof(float), NumberDataViewType.Single),
        (3, typeof(double), NumberDataViewType.Double),
        (4, typeof(bool), BooleanDataViewType.Instance),
        (5, typeof(sbyte), NumberDataViewType.SByte),
        (6, typeof(byte), NumberDataViewType.Byte),
        (7, typeof(short), NumberDataViewType.Int16),
        (8, typeof(ushort), NumberDataViewType.UInt16),
        (9, typeof(int), NumberDataViewType.Int32),
        (10, typeof(uint), NumberDataViewType.UInt32),
        (11, typeof(long), NumberDataViewType.Int64),
        (12, typeof(ulong), NumberDataViewType.UInt64),
    ];

    private ClassLabels(int count, byte code, Array? values, string[] names)
    {
        Count = count;
        Code = code;
        Values = values;
        Names = names;
    }

    /// <summary>Number of classes.</summary>
    public int Count { get; }

    /// <summary>Whether key values are known.</summary>
    public bool HasValues => Values is not null;

    /// <summary>Text form of each class (the key values, or "0", "1", … when there are none).</summary>
    public string[] Names { get; }

    private byte Code { get; }

    /// <summary>The key values in their raw type (string[] for text), or null.</summary>
    private Array? Values { get; }

    /// <summary>Reads count and key values from a key-typed label column.</summary>
    public static ClassLabels FromColumn(DataViewSchema.Column label)
    {
        var key = (KeyDataViewType)label.Type;
        int count = checked((int)key.Count);
        var kvColumn = label.Annotations.Schema.GetColumnOrNull(TaskSchema.KeyValuesAnnotation);
        if (kvColumn is null || kvColumn.Value.Type is not VectorDataViewType { ItemType: PrimitiveDataViewType item } kvType)
            return new ClassLabels(count, 0, null, Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray());
        var kind = Kinds.FirstOrDefault(k => k.Type.Equals(item));
        if (kind.Code == 0)
            return new ClassLabels(count, 0, null, Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray());
        var method = typeof(ClassLabels).GetMethod(nameof(ReadKeyValues), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
            .MakeGenericMethod(kind.Raw);
        var values = (Array)method.Invoke(null, [label, count])!;
        if (values is ReadOnlyMemory<char>[] text)
            values = text.Select(t => t.ToString()).ToArray();
        return Create(count, kind.Code, values);
    }

    /// <summary>Text key values (class names), in class order.</summary>
    public static ClassLabels FromNames(IReadOnlyList<string> names) => Create(names.Count, 1, names.ToArray());

    /// <summary>The classes of a task: a multiclass label's keys, False and True for binary classification, none for regression.</summary>
    public static ClassLabels For(Networks.NetworkTask task, DataViewSchema.Column label) => task switch
    {
        Networks.NetworkTask.BinaryClassification => Binary,
        Networks.NetworkTask.Regression => None,
        _ => FromColumn(label),
    };

    /// <summary>Binary classification's two classes: "False" (0) and "True" (1), without key values.</summary>
    public static ClassLabels Binary { get; } = new(2, 0, null, ["False", "True"]);

    /// <summary>Regression's: no classes.</summary>
    public static ClassLabels None { get; } = new(0, 0, null, []);

    private static T[] ReadKeyValues<T>(DataViewSchema.Column label, int count)
    {
        VBuffer<T> buffer = default;
        label.Annotations.GetValue(TaskSchema.KeyValuesAnnotation, ref buffer);
        var dense = buffer.DenseValues().ToArray();
        if (dense.Length != count)
            throw new ArgumentException($"Label column '{label.Name}' has {dense.Length} key values for a key of {count} values.");
        return dense;
    }

    private static ClassLabels Create(int count, byte code, Array values)
    {
        var names = new string[count];
        for (int i = 0; i < count; i++)
            names[i] = Convert.ToString(values.GetValue(i), CultureInfo.InvariantCulture) ?? string.Empty;
        return new ClassLabels(count, code, values, names);
    }

    /// <summary>Adds the <c>KeyValues</c> annotation (nothing when there are no key values).</summary>
    public void AddKeyValues(DataViewSchema.Annotations.Builder builder)
    {
        if (Values is null)
            return;
        var kind = Kinds.First(k => k.Code == Code);
        var method = typeof(ClassLabels).GetMethod(nameof(AddTyped), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
            .MakeGenericMethod(kind.Raw);
        Array values = Values is string[] s ? s.Select(x => x.AsMemory()).ToArray() : Values;
        method.Invoke(null, [builder, kind.Type, values]);
    }

    private static void AddTyped<T>(DataViewSchema.Annotations.Builder builder, PrimitiveDataViewType type, T[] values) =>
        builder.Add(TaskSchema.KeyValuesAnnotation, new VectorDataViewType(type, values.Length),
            (ref VBuffer<T> v) => new VBuffer<T>(values.Length, values).CopyTo(ref v));

    // Binary format: int32 count; byte code (0 = no key values); then count values of that type
    // (text: BinaryWriter string; numbers: little-endian; bool: byte).
    public void Write(BinaryWriter w)
    {
        w.Write(Count);
        w.Write(Code);
        if (Values is null)
            return;
        for (int i = 0; i < Count; i++)
        {
            switch (Values.GetValue(i))
            {
                case string v: w.Write(v); break;
                case float v: w.Write(v); break;
                case double v: w.Write(v); break;
                case bool v: w.Write(v); break;
                case sbyte v: w.Write(v); break;
                case byte v: w.Write(v); break;
                case short v: w.Write(v); break;
                case ushort v: w.Write(v); break;
                case int v: w.Write(v); break;
                case uint v: w.Write(v); break;
                case long v: w.Write(v); break;
                case ulong v: w.Write(v); break;
                default: throw new InvalidOperationException("Unsupported key value type.");
            }
        }
    }

    public static ClassLabels Read(BinaryReader r)
    {
        int count = r.ReadInt32();
        if (count < 0 || !ClassCountRule.IsValid((ulong)count))
            throw new InvalidDataException($"The model's class count {count} is out of range ({ClassCountRule.RangeText}).");
        byte code = r.ReadByte();
        if (code == 0)
            return new ClassLabels(count, 0, null, Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray());
        Array values = code switch
        {
            1 => ReadArray(count, r.ReadString),
            2 => ReadArray(count, r.ReadSingle),
            3 => ReadArray(count, r.ReadDouble),
            4 => ReadArray(count, r.ReadBoolean),
            5 => ReadArray(count, r.ReadSByte),
            6 => ReadArray(count, r.ReadByte),
            7 => ReadArray(count, r.ReadInt16),
            8 => ReadArray(count, r.ReadUInt16),
            9 => ReadArray(count, r.ReadInt32),
            10 => ReadArray(count, r.ReadUInt32),
            11 => ReadArray(count, r.ReadInt64),
            12 => ReadArray(count, r.ReadUInt64),
            _ => throw new InvalidDataException($"Unknown key value type code {code} in the model."),
        };
        return Create(count, code, values);
    }

    private static T[] ReadArray<T>(int count, Func<T> read)
    {
        var a = new T[count];
        for (int i = 0; i < count; i++)
            a[i] = read();
        return a;
    }
}
