package analysislite;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.elasticsearch.common.Strings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;

/**
 * The {@code snowball} token filter. Setting {@code language} (alias {@code name}, default English)
 * names any stemmer in {@code org.tartarus.snowball.ext}, e.g. English, German or French; an unknown
 * one fails the index creation instead of failing later, at the first analysis.
 */
final class SnowballTokenFilterFactory extends AbstractTokenFilterFactory {
    private final String language;

    SnowballTokenFilterFactory(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        super(name, settings);
        this.language = Strings.capitalize(settings.get("language", settings.get("name", "English")));
        try {
            Class.forName("org.tartarus.snowball.ext." + language + "Stemmer", false, SnowballFilter.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            throw new IllegalArgumentException("snowball [" + name + "]: unknown language [" + language + "]", e);
        }
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return new SnowballFilter(tokenStream, language);
    }
}
